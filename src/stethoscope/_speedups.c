/* stethoscope._speedups: the optional compiled hot path of exact line counting.
 *
 * LineCounter(exclude=None, on_fault=None) is a callable registered directly as
 * the sys.monitoring LINE callback: counter(code, line) adds one to the count of
 * that line of that code object, and take() hands over every count since the
 * last take() and starts afresh. The pure-Python fallback in
 * collectors/monitoring.py does the same work with per-thread dicts.
 *
 * Tracer (3.10/3.11 only; see its section below) is the settrace counterpart: a
 * C trace function installed with PyEval_SetTrace that counts LINE events of
 * monitored code through the same lc_count() into a LineCounter.
 *
 * Thread safety: every increment happens in C while holding the GIL, and the
 * counting path calls no Python code and allocates no Python objects, so it can
 * never release the GIL half-way: no increment is lost between threads without
 * per-thread tables. take() detaches the whole table before it builds Python
 * objects (which may run the cyclic GC, finalizers, other threads), so counts
 * made meanwhile land in the fresh table. A free-threaded build has no GIL to
 * rely on: this file refuses to compile there, and the Python side falls back.
 *
 * Storage: a hash table keyed by the code object's address (the entry holds a
 * strong reference, so the address stays unique until take() lets it go), each
 * entry a dense array of 64-bit counts over the span of lines seen; the entry of
 * the last code counted is cached, so a loop costs one compare and one add per
 * line. Lines that do not fit an int64 or a bounded span go to a plain dict.
 *
 * Never raises into the program: CPython raises a LINE callback's exception in
 * the monitored code itself (and keeps calling). An internal error (memory) is
 * handed to on_fault(exc) instead, and the counter stops counting. Only misuse
 * that CPython's LINE events cannot produce (wrong arguments, a line that is not
 * an int) raises TypeError.
 *
 * exclude() is asked once per thread (per counter), on the first line that
 * thread counts; a true answer means that thread's lines are never counted (the
 * monitor's own threads). The answer is cached in C thread-local storage, which
 * a new thread starts without, so a reused thread ident cannot inherit it.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030B0000
#define HAVE_TRACER 1
#include <frameobject.h>
#elif PY_VERSION_HEX < 0x030C0000
/* 3.11 keeps PyFrameObject's fields (f_trace_lines) in this internal header; it
 * needs no Py_BUILD_CORE there (coverage.py's CTracer includes it the same way).
 * Headers without it: no Tracer (trace mode counts in Python), the rest builds. */
#if defined(__has_include)
#if __has_include(<internal/pycore_frame.h>)
#define HAVE_TRACER 1
#include <frameobject.h>
#include <internal/pycore_frame.h>
#endif
#endif
#endif

#ifdef Py_GIL_DISABLED
#error "stethoscope._speedups relies on the GIL; free-threaded builds use the pure-Python path"
#endif

#if defined(_MSC_VER)
#define THREAD_LOCAL __declspec(thread)
#else
#define THREAD_LOCAL _Thread_local
#endif

/* Widest span of lines one code object's array may cover (8 MiB of counts). */
#define MAX_SPAN (1 << 20)
/* Lines beyond +-DENSE_LIMIT go to the overflow dict, which keeps every sum and
 * difference of lines below (a span plus slack) far from long long overflow. */
#define DENSE_LIMIT (1LL << 62)
#define INITIAL_SLOTS 64

typedef struct {
    PyObject *code;              /* strong reference */
    long long lo;                /* the line counts[0] counts */
    Py_ssize_t size;             /* slots in counts */
    unsigned long long *counts;
} Entry;

typedef struct {
    Entry **slots;               /* open addressing on the code address */
    size_t mask;                 /* capacity - 1; capacity is a power of two */
    size_t used;
    PyObject *overflow;          /* {(code, line): int} for odd lines, or NULL */
} Table;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Table *table;
    Entry *last;                 /* entry of the last code counted, in table */
    PyObject *exclude;           /* callable() -> bool, or NULL */
    PyObject *on_fault;          /* callable(exc), or NULL */
    unsigned long long serial;   /* tells this counter apart in thread-local state */
    int faulted;
} LineCounter;

/* Per OS thread: which counter the cached decision is for, and the decision. */
static THREAD_LOCAL unsigned long long tls_serial = 0;
static THREAD_LOCAL int tls_excluded = 0;
static unsigned long long next_serial = 0;  /* guarded by the GIL */

/* -- the table ---------------------------------------------------------------- */

static Table *
table_new(void)
{
    Table *t = PyMem_RawCalloc(1, sizeof(Table));
    if (t == NULL) {
        return NULL;
    }
    t->slots = PyMem_RawCalloc(INITIAL_SLOTS, sizeof(Entry *));
    if (t->slots == NULL) {
        PyMem_RawFree(t);
        return NULL;
    }
    t->mask = INITIAL_SLOTS - 1;
    return t;
}

static void
table_free(Table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i <= t->mask; i++) {
        Entry *e = t->slots[i];
        if (e != NULL) {
            Py_DECREF(e->code);
            PyMem_RawFree(e->counts);
            PyMem_RawFree(e);
        }
    }
    PyMem_RawFree(t->slots);
    Py_XDECREF(t->overflow);
    PyMem_RawFree(t);
}

static inline size_t
slot_of(const void *code, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)code;
    h ^= h >> 33;
    h *= 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 20) & mask;
}

/* 0 on success, -1 with no Python error set on allocation failure. */
static int
table_grow(Table *t)
{
    size_t capacity = (t->mask + 1) * 2;
    Entry **slots = PyMem_RawCalloc(capacity, sizeof(Entry *));
    if (slots == NULL) {
        return -1;
    }
    for (size_t i = 0; i <= t->mask; i++) {
        Entry *e = t->slots[i];
        if (e != NULL) {
            size_t j = slot_of(e->code, capacity - 1);
            while (slots[j] != NULL) {
                j = (j + 1) & (capacity - 1);
            }
            slots[j] = e;
        }
    }
    PyMem_RawFree(t->slots);
    t->slots = slots;
    t->mask = capacity - 1;
    return 0;
}

/* The entry for code, created (covering line) if missing; NULL on allocation
 * failure (no Python error set). Calls no Python code. */
static Entry *
table_entry(Table *t, PyObject *code, long long line)
{
    size_t i = slot_of(code, t->mask);
    Entry *e;
    while ((e = t->slots[i]) != NULL) {
        if (e->code == code) {
            return e;
        }
        i = (i + 1) & t->mask;
    }
    if ((t->used + 1) * 2 > t->mask + 1) {
        if (table_grow(t) < 0) {
            return NULL;
        }
        i = slot_of(code, t->mask);
        while (t->slots[i] != NULL) {
            i = (i + 1) & t->mask;
        }
    }
    e = PyMem_RawMalloc(sizeof(Entry));
    if (e == NULL) {
        return NULL;
    }
    /* Start at the code's first line when the line is near it: most lines
     * that follow then fit without growing. */
    long long lo = line;
    if (PyCode_Check(code)) {
        long long first = ((PyCodeObject *)code)->co_firstlineno;  /* an int */
        if (first <= line && line - first < 4096) {
            lo = first;
        }
    }
    e->size = (Py_ssize_t)(line - lo) + 32;
    e->counts = PyMem_RawCalloc((size_t)e->size, sizeof(unsigned long long));
    if (e->counts == NULL) {
        PyMem_RawFree(e);
        return NULL;
    }
    e->lo = lo;
    e->code = Py_NewRef(code);
    t->slots[i] = e;
    t->used++;
    return e;
}

/* Make e cover line. 1 on success, 0 if the span would exceed MAX_SPAN, -1 on
 * allocation failure (no Python error set). */
static int
entry_cover(Entry *e, long long line)
{
    long long hi = e->lo + e->size;
    long long lo = e->lo;
    if (line < lo) {
        /* Overflow-safe: both differences are checked before they are added. */
        if (hi - line > MAX_SPAN || lo - line > MAX_SPAN) {
            return 0;
        }
        long long slack = (hi - line) / 2 + 8;
        lo = line - slack;
        if (hi - lo > MAX_SPAN) {
            lo = hi - MAX_SPAN;
        }
    }
    else {
        if (line - lo >= MAX_SPAN) {
            return 0;
        }
        long long slack = (line - lo) / 2 + 16;
        hi = line + 1 + slack;
        if (hi - lo > MAX_SPAN) {
            hi = lo + MAX_SPAN;
        }
    }
    Py_ssize_t size = (Py_ssize_t)(hi - lo);
    unsigned long long *counts = PyMem_RawCalloc((size_t)size, sizeof(unsigned long long));
    if (counts == NULL) {
        return -1;
    }
    memcpy(counts + (e->lo - lo), e->counts, (size_t)e->size * sizeof(unsigned long long));
    PyMem_RawFree(e->counts);
    e->counts = counts;
    e->lo = lo;
    e->size = size;
    return 1;
}

/* -- counting ----------------------------------------------------------------- */

/* Swallow the current error, stop counting, tell on_fault. */
static void
lc_fault(LineCounter *self)
{
    if (!PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    self->faulted = 1;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    PyObject *exc = value;
#endif
    PyObject *on_fault = self->on_fault;
    if (on_fault != NULL) {
        Py_INCREF(on_fault);
        PyObject *res = PyObject_CallOneArg(on_fault, exc != NULL ? exc : Py_None);
        Py_DECREF(on_fault);
        if (res == NULL) {
            PyErr_Clear();  /* a fault while reporting a fault: nothing left to tell */
        }
        Py_XDECREF(res);
    }
    Py_XDECREF(exc);
}

/* Ask exclude() once for this thread. 1 excluded, 0 counted. Runs Python code:
 * the GIL may be released, so callers re-read self's table afterwards. */
static int
lc_decide_thread(LineCounter *self)
{
    int excluded = 0;
    PyObject *exclude = self->exclude;
    if (exclude != NULL) {
        Py_INCREF(exclude);
        PyObject *res = PyObject_CallNoArgs(exclude);
        Py_DECREF(exclude);
        if (res == NULL) {
            PyErr_Clear();  /* cannot tell: count it, as the Python path would */
        }
        else {
            excluded = PyObject_IsTrue(res) > 0;
            if (PyErr_Occurred()) {
                PyErr_Clear();
            }
            Py_DECREF(res);
        }
    }
    tls_serial = self->serial;
    tls_excluded = excluded;
    return excluded;
}

/* A line that does not fit the arrays: count it in the overflow dict. May run
 * Python code (hashing, GC), so it works on its own references only. */
static void
lc_count_overflow(LineCounter *self, PyObject *code, PyObject *line)
{
    if (self->table->overflow == NULL) {
        /* Allocating may collect garbage, run finalizers, switch threads and let
         * take() swap the table: look at self->table again afterwards. */
        PyObject *fresh = PyDict_New();
        if (fresh == NULL) {
            lc_fault(self);
            return;
        }
        if (self->table->overflow == NULL) {
            self->table->overflow = fresh;
        }
        else {
            Py_DECREF(fresh);
        }
    }
    PyObject *overflow = Py_NewRef(self->table->overflow);
    PyObject *key = PyTuple_Pack(2, code, line);
    PyObject *one = PyLong_FromLong(1);
    PyObject *count = NULL;
    if (key == NULL || one == NULL) {
        goto error;
    }
    PyObject *old = PyDict_GetItemWithError(overflow, key);  /* borrowed */
    if (old == NULL && PyErr_Occurred()) {
        goto error;
    }
    count = old == NULL ? Py_NewRef(one) : PyNumber_Add(old, one);
    if (count == NULL || PyDict_SetItem(overflow, key, count) < 0) {
        goto error;
    }
    Py_DECREF(count);
    Py_DECREF(one);
    Py_DECREF(key);
    Py_DECREF(overflow);
    return;
error:
    Py_XDECREF(count);
    Py_XDECREF(one);
    Py_XDECREF(key);
    Py_DECREF(overflow);
    lc_fault(self);
}

/* 1 and *out set for an int that fits, 0 for an int that does not, -1 with
 * TypeError for anything else. */
static inline int
line_value(PyObject *obj, long long *out)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (PyLong_CheckExact(obj) && PyUnstable_Long_IsCompact((PyLongObject *)obj)) {
        *out = (long long)PyUnstable_Long_CompactValue((PyLongObject *)obj);
        return 1;
    }
#endif
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "line must be an int, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow) {
        return 0;
    }
    if (value == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (value > DENSE_LIMIT || value < -DENSE_LIMIT) {
        return 0;
    }
    *out = value;
    return 1;
}

/* Count one line of code: the one counting path, for the LINE callback and the
 * settrace tracer alike. Never raises: an internal error goes to on_fault.
 * line_obj is the line as an int object, or NULL (made here if it is needed). */
static void
lc_count(LineCounter *self, PyObject *code, long long line, int fits, PyObject *line_obj)
{
    if (self->faulted) {
        return;
    }
    if (self->exclude != NULL) {
        if (tls_serial != self->serial ? lc_decide_thread(self) : tls_excluded) {
            return;
        }
    }
    if (fits) {
        /* From here on no Python code runs and the GIL is held throughout. */
        Entry *e = self->last;
        if (e == NULL || e->code != code) {
            e = table_entry(self->table, code, line);
            if (e == NULL) {
                lc_fault(self);
                return;
            }
            self->last = e;
        }
        unsigned long long index = (unsigned long long)(line - e->lo);
        if (line < e->lo || index >= (unsigned long long)e->size) {
            int covered = entry_cover(e, line);
            if (covered < 0) {
                lc_fault(self);
                return;
            }
            fits = covered;
            index = (unsigned long long)(line - e->lo);
        }
        if (fits) {
            e->counts[index]++;
            return;
        }
    }
    if (line_obj != NULL) {
        lc_count_overflow(self, code, line_obj);
        return;
    }
    line_obj = PyLong_FromLongLong(line);
    if (line_obj == NULL) {
        lc_fault(self);
        return;
    }
    lc_count_overflow(self, code, line_obj);
    Py_DECREF(line_obj);
}

static PyObject *
lc_vectorcall(PyObject *self_obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    LineCounter *self = (LineCounter *)self_obj;
    if (PyVectorcall_NARGS(nargsf) != 2 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "LineCounter takes two positional arguments "
                                         "(code, line)");
        return NULL;
    }
    long long line = 0;
    int fits = line_value(args[1], &line);
    if (fits < 0) {
        return NULL;
    }
    lc_count(self, args[0], line, fits, args[1]);
    Py_RETURN_NONE;
}

/* -- take() ------------------------------------------------------------------- */

/* Append (code, {line: count}) for every entry of a detached table. */
static int
take_into(PyObject *out, Table *t)
{
    for (size_t i = 0; i <= t->mask; i++) {
        Entry *e = t->slots[i];
        if (e == NULL) {
            continue;
        }
        PyObject *lines = PyDict_New();
        if (lines == NULL) {
            return -1;
        }
        for (Py_ssize_t j = 0; j < e->size; j++) {
            if (e->counts[j] == 0) {
                continue;
            }
            PyObject *line = PyLong_FromLongLong(e->lo + j);
            PyObject *count = PyLong_FromUnsignedLongLong(e->counts[j]);
            int rc = (line == NULL || count == NULL) ? -1 : PyDict_SetItem(lines, line, count);
            Py_XDECREF(line);
            Py_XDECREF(count);
            if (rc < 0) {
                Py_DECREF(lines);
                return -1;
            }
        }
        PyObject *pair = PyTuple_Pack(2, e->code, lines);
        Py_DECREF(lines);
        if (pair == NULL || PyList_Append(out, pair) < 0) {
            Py_XDECREF(pair);
            return -1;
        }
        Py_DECREF(pair);
    }
    if (t->overflow != NULL) {
        PyObject *key, *count;
        Py_ssize_t pos = 0;
        while (PyDict_Next(t->overflow, &pos, &key, &count)) {
            PyObject *lines = PyDict_New();
            if (lines == NULL || PyDict_SetItem(lines, PyTuple_GET_ITEM(key, 1), count) < 0) {
                Py_XDECREF(lines);
                return -1;
            }
            PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(key, 0), lines);
            Py_DECREF(lines);
            if (pair == NULL || PyList_Append(out, pair) < 0) {
                Py_XDECREF(pair);
                return -1;
            }
            Py_DECREF(pair);
        }
    }
    return 0;
}

static PyObject *
lc_take(LineCounter *self, PyObject *Py_UNUSED(ignored))
{
    Table *fresh = table_new();
    if (fresh == NULL) {
        return PyErr_NoMemory();
    }
    /* Swap first: building the result may let other code count meanwhile. */
    Table *old = self->table;
    self->table = fresh;
    self->last = NULL;
    PyObject *out = PyList_New(0);
    if (out != NULL && take_into(out, old) < 0) {
        Py_CLEAR(out);
    }
    table_free(old);
    return out;
}

/* -- the type ----------------------------------------------------------------- */

static PyObject *
lc_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"exclude", "on_fault", NULL};
    PyObject *exclude = Py_None, *on_fault = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OO:LineCounter", kwlist,
                                     &exclude, &on_fault)) {
        return NULL;
    }
    if ((exclude != Py_None && !PyCallable_Check(exclude))
            || (on_fault != Py_None && !PyCallable_Check(on_fault))) {
        PyErr_SetString(PyExc_TypeError, "exclude and on_fault must be callables or None");
        return NULL;
    }
    LineCounter *self = (LineCounter *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->table = table_new();
    if (self->table == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->vectorcall = lc_vectorcall;
    self->exclude = exclude == Py_None ? NULL : Py_NewRef(exclude);
    self->on_fault = on_fault == Py_None ? NULL : Py_NewRef(on_fault);
    self->serial = ++next_serial;
    return (PyObject *)self;
}

static int
lc_traverse(LineCounter *self, visitproc visit, void *arg)
{
    Py_VISIT(self->exclude);
    Py_VISIT(self->on_fault);
    if (self->table != NULL) {
        Py_VISIT(self->table->overflow);
    }
    return 0;
}

static int
lc_clear(LineCounter *self)
{
    Py_CLEAR(self->exclude);
    Py_CLEAR(self->on_fault);
    return 0;
}

static void
lc_dealloc(LineCounter *self)
{
    PyObject_GC_UnTrack(self);
    lc_clear(self);
    table_free(self->table);
    self->table = NULL;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
lc_get_faulted(LineCounter *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->faulted);
}

static PyMethodDef lc_methods[] = {
    {"take", (PyCFunction)lc_take, METH_NOARGS,
     "take() -> [(code, {line: count})]: the counts since the last take(), which\n"
     "start afresh. A code object may appear more than once (lines outside the\n"
     "dense arrays come separately); add them up."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef lc_getset[] = {
    {"faulted", (getter)lc_get_faulted, NULL,
     "True once an internal error stopped counting (on_fault was told).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(lc_doc,
"LineCounter(*, exclude=None, on_fault=None)\n"
"\n"
"A sys.monitoring LINE callback that counts: counter(code, line) adds one to\n"
"that line of that code object. exclude() is asked once per thread; threads it\n"
"answers true for are not counted. An internal error (memory) never raises:\n"
"on_fault(exc) is called and counting stops.");

static PyTypeObject LineCounterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stethoscope._speedups.LineCounter",
    .tp_doc = lc_doc,
    .tp_basicsize = sizeof(LineCounter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(LineCounter, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = lc_new,
    .tp_traverse = (traverseproc)lc_traverse,
    .tp_clear = (inquiry)lc_clear,
    .tp_dealloc = (destructor)lc_dealloc,
    .tp_methods = lc_methods,
    .tp_getset = lc_getset,
};

/* -- Tracer: the settrace hot path of 3.10/3.11 ------------------------------- */

#ifdef HAVE_TRACER

/* Tracer(counter, resolve, *, exclude=None, on_fault=None) is installed with
 * PyEval_SetTrace: a C trace function, so CPython neither calls Python code per
 * event nor syncs the frame's locals around it. On a CALL event it decides the
 * frame's code once per file name (resolve(filename) is not None: monitored;
 * the answers are kept in a dict keyed by file name, so memory follows files,
 * not code objects) and switches LINE events off for frames it does not
 * monitor (f_trace_lines = 0). A LINE event of monitored code is counted with
 * lc_count into the LineCounter, which ThreadCounters.fold() takes from.
 *
 * The object is also a Python trace function: threading.settrace(tracer) makes
 * it the first trace call of every new thread, which installs the C function
 * there (unless exclude() says the thread is the monitor's own); and a program
 * that does sys.settrace(sys.gettrace()) gets the C function back at its next
 * call. stop() sets a flag that every thread reads at its next event, when it
 * removes the tracer from itself (PyEval_SetTrace(NULL, NULL)).
 *
 * Never raises into the program: a trace function that returns -1 would raise
 * in the traced code. Any internal error goes to on_fault(exc), stops the
 * tracer in every thread, and the event returns 0. */

typedef struct {
    PyObject_HEAD
    LineCounter *counter;        /* strong reference */
    PyObject *resolve;           /* callable(filename) -> None when not monitored */
    PyObject *exclude;           /* callable() -> bool, or NULL */
    PyObject *on_fault;          /* callable(exc), or NULL */
    PyObject *decided;           /* {filename: bool} */
    PyObject *last_code;         /* the code object of the last LINE event, or NULL */
    int last_monitored;          /* ... and whether it is monitored */
    int stopped;                 /* read by every thread at its next event */
} Tracer;

static PyTypeObject TracerType;

static inline void
set_trace_lines(PyFrameObject *frame, int on)
{
    frame->f_trace_lines = (char)on;
}

static inline PyObject *
frame_code(PyFrameObject *frame)  /* new reference */
{
    return (PyObject *)PyFrame_GetCode(frame);
}

/* Take the tracer off the calling thread. Keeps self alive across the call:
 * the thread's reference may be the last one. */
static void
tr_remove(Tracer *self)
{
    Py_INCREF(self);
    PyEval_SetTrace(NULL, NULL);
    if (PyErr_Occurred()) {
        PyErr_Clear();
    }
    Py_DECREF(self);
}

/* Swallow the current error, stop tracing everywhere, tell on_fault. */
static void
tr_fault(Tracer *self)
{
    if (!PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    self->stopped = 1;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    Py_INCREF(self);
    if (self->on_fault != NULL) {
        PyObject *on_fault = Py_NewRef(self->on_fault);
        PyObject *res = PyObject_CallOneArg(on_fault, value != NULL ? value : Py_None);
        Py_DECREF(on_fault);
        if (res == NULL) {
            PyErr_Clear();  /* a fault while reporting a fault: nothing left to tell */
        }
        Py_XDECREF(res);
    }
    Py_XDECREF(value);
    tr_remove(self);
    Py_DECREF(self);
}

/* 1: code is monitored, 0: it is not, -1: error set, -2: cannot tell now (the
 * program is at its recursion limit: skip this frame, as the Python path does). */
static int
tr_decide(Tracer *self, PyObject *code)
{
    PyObject *filename = ((PyCodeObject *)code)->co_filename;
    PyObject *known = PyDict_GetItemWithError(self->decided, filename);  /* borrowed */
    if (known != NULL) {
        return known == Py_True;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    Py_INCREF(filename);
    PyObject *res = PyObject_CallOneArg(self->resolve, filename);
    if (res == NULL) {
        Py_DECREF(filename);
        if (PyErr_ExceptionMatches(PyExc_RecursionError)) {
            PyErr_Clear();
            return -2;
        }
        return -1;
    }
    int monitored = res != Py_None;
    Py_DECREF(res);
    int rc = PyDict_SetItem(self->decided, filename, monitored ? Py_True : Py_False);
    Py_DECREF(filename);
    return rc < 0 ? -1 : monitored;
}

static void
tr_call(Tracer *self, PyFrameObject *frame)
{
    PyObject *code = frame_code(frame);
    int monitored = tr_decide(self, code);
    Py_DECREF(code);
    if (monitored == -1) {
        tr_fault(self);
        return;
    }
    /* Also on: a generator's frame may keep an "off" from an earlier monitor. */
    set_trace_lines(frame, monitored == 1);
}

static void
tr_line(Tracer *self, PyFrameObject *frame)
{
    PyObject *code = frame_code(frame);
    if (code != self->last_code) {
        /* A frame that was running before start() (or whose code changed hands):
         * decide here too. Most LINE events are of the last code. */
        int monitored = tr_decide(self, code);
        if (monitored < 0) {
            Py_DECREF(code);
            if (monitored == -1) {
                tr_fault(self);
            }
            else {
                set_trace_lines(frame, 0);
            }
            return;
        }
        /* Held, so that the address cannot be reused by another code object. Both
         * set before the old one goes (its dealloc may run code, other threads). */
        PyObject *old = self->last_code;
        self->last_monitored = monitored;
        self->last_code = Py_NewRef(code);
        Py_XDECREF(old);
    }
    if (!self->last_monitored) {
        set_trace_lines(frame, 0);
    }
    else {
        lc_count(self->counter, code, (long long)PyFrame_GetLineNumber(frame), 1, NULL);
    }
    Py_DECREF(code);
}

static int
tr_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *Py_UNUSED(arg))
{
    Tracer *self = (Tracer *)obj;
    if (self->stopped || self->counter == NULL || self->counter->faulted) {
        tr_remove(self);
        return 0;
    }
    if (what == PyTrace_LINE) {
        tr_line(self, frame);
    }
    else if (what == PyTrace_CALL) {
        tr_call(self, frame);
    }
    if (PyErr_Occurred()) {  /* never into the program */
        PyErr_Clear();
    }
    return 0;
}

/* 1 when exclude() says the calling thread is the monitor's own. */
static int
tr_excluded(Tracer *self)
{
    if (self->exclude == NULL) {
        return 0;
    }
    PyObject *exclude = Py_NewRef(self->exclude);
    PyObject *res = PyObject_CallNoArgs(exclude);
    Py_DECREF(exclude);
    int excluded = 0;
    if (res == NULL) {
        PyErr_Clear();  /* cannot tell: trace it, as the Python path would */
    }
    else {
        excluded = PyObject_IsTrue(res) > 0;
        Py_DECREF(res);
        if (PyErr_Occurred()) {
            PyErr_Clear();
        }
    }
    return excluded;
}

/* tracer(frame, event, arg) as a Python trace function: the first event of a
 * new thread (threading.settrace), or any event after the program did
 * sys.settrace(sys.gettrace()). A call event installs the C function. */
static PyObject *
tr_pycall(Tracer *self, PyObject *args, PyObject *kwds)
{
    PyObject *frame, *event, *arg;
    if (kwds != NULL && PyDict_GET_SIZE(kwds) != 0) {
        PyErr_SetString(PyExc_TypeError, "Tracer takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!UO:Tracer", &PyFrame_Type, &frame, &event, &arg)) {
        return NULL;
    }
    Py_INCREF(self);
    if (self->stopped || self->counter == NULL || self->counter->faulted) {
        tr_remove(self);
    }
    else if (PyUnicode_CompareWithASCIIString(event, "call") == 0) {
        if (tr_excluded(self)) {
            tr_remove(self);
        }
        else {
            PyEval_SetTrace(tr_trace, (PyObject *)self);
            if (PyErr_Occurred()) {
                PyErr_Clear();
            }
            tr_call(self, (PyFrameObject *)frame);
        }
    }
    else if (PyUnicode_CompareWithASCIIString(event, "line") == 0) {
        tr_line(self, (PyFrameObject *)frame);
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
    }
    Py_DECREF(self);
    Py_RETURN_NONE;
}

static PyObject *
tr_start_thread(Tracer *self, PyObject *Py_UNUSED(ignored))
{
    if (self->stopped) {
        PyErr_SetString(PyExc_RuntimeError, "this tracer has stopped");
        return NULL;
    }
    PyEval_SetTrace(tr_trace, (PyObject *)self);
    if (PyErr_Occurred()) {  /* an audit hook refused (already reported) */
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}

static PyObject *
tr_stop(Tracer *self, PyObject *Py_UNUSED(ignored))
{
    self->stopped = 1;
    Py_RETURN_NONE;
}

static PyObject *
tr_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"counter", "resolve", "exclude", "on_fault", NULL};
    PyObject *counter, *resolve, *exclude = Py_None, *on_fault = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O|$OO:Tracer", kwlist, &LineCounterType,
                                     &counter, &resolve, &exclude, &on_fault)) {
        return NULL;
    }
    if (!PyCallable_Check(resolve) || (exclude != Py_None && !PyCallable_Check(exclude))
            || (on_fault != Py_None && !PyCallable_Check(on_fault))) {
        PyErr_SetString(PyExc_TypeError, "resolve must be callable, exclude and on_fault "
                                         "callables or None");
        return NULL;
    }
    Tracer *self = (Tracer *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->decided = PyDict_New();
    if (self->decided == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->counter = (LineCounter *)Py_NewRef(counter);
    self->resolve = Py_NewRef(resolve);
    self->exclude = exclude == Py_None ? NULL : Py_NewRef(exclude);
    self->on_fault = on_fault == Py_None ? NULL : Py_NewRef(on_fault);
    return (PyObject *)self;
}

static int
tr_traverse(Tracer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->counter);
    Py_VISIT(self->resolve);
    Py_VISIT(self->exclude);
    Py_VISIT(self->on_fault);
    Py_VISIT(self->decided);
    Py_VISIT(self->last_code);
    return 0;
}

static int
tr_clear(Tracer *self)
{
    Py_CLEAR(self->counter);
    Py_CLEAR(self->resolve);
    Py_CLEAR(self->exclude);
    Py_CLEAR(self->on_fault);
    Py_CLEAR(self->decided);
    Py_CLEAR(self->last_code);
    return 0;
}

static void
tr_dealloc(Tracer *self)
{
    PyObject_GC_UnTrack(self);
    tr_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
tr_get_stopped(Tracer *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->stopped || (self->counter != NULL && self->counter->faulted));
}

static PyMethodDef tr_methods[] = {
    {"start_thread", (PyCFunction)tr_start_thread, METH_NOARGS,
     "Install the C trace function for the calling thread (PyEval_SetTrace).\n"
     "Its frames already running are counted from their next line."},
    {"stop", (PyCFunction)tr_stop, METH_NOARGS,
     "Stop counting: every thread removes the tracer at its next event. The\n"
     "caller restores its own thread's trace function (sys.settrace)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef tr_getset[] = {
    {"stopped", (getter)tr_get_stopped, NULL,
     "True once stop() was called or an internal error stopped the tracer.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(tr_doc,
"Tracer(counter, resolve, *, exclude=None, on_fault=None)\n"
"\n"
"A C trace function (Python 3.10/3.11) that counts the lines of monitored\n"
"code into counter, a LineCounter: code is monitored when resolve(filename)\n"
"is not None. start_thread() installs it for the calling thread; the object\n"
"itself is the hook for threading.settrace (threads for which exclude() is\n"
"true run untraced); stop() takes it off every thread at its next event. An\n"
"internal error never raises: on_fault(exc) is called and tracing stops.");

static PyTypeObject TracerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stethoscope._speedups.Tracer",
    .tp_doc = tr_doc,
    .tp_basicsize = sizeof(Tracer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_call = (ternaryfunc)tr_pycall,
    .tp_new = tr_new,
    .tp_traverse = (traverseproc)tr_traverse,
    .tp_clear = (inquiry)tr_clear,
    .tp_dealloc = (destructor)tr_dealloc,
    .tp_methods = tr_methods,
    .tp_getset = tr_getset,
};

#endif  /* HAVE_TRACER */

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "stethoscope._speedups",
    .m_doc = "The optional compiled hot path of stethoscope's exact line counting.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&LineCounterType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "LineCounter", (PyObject *)&LineCounterType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
#ifdef HAVE_TRACER
    if (PyType_Ready(&TracerType) < 0
            || PyModule_AddObjectRef(module, "Tracer", (PyObject *)&TracerType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
#endif
    return module;
}
