/* stethoscope._speedups: the optional compiled hot path of exact line counting.
 *
 * LineCounter(exclude=None, on_fault=None) is a callable registered directly as
 * the sys.monitoring LINE callback: counter(code, line) adds one to the count of
 * that line of that code object, and take() hands over every count since the
 * last take() and starts afresh. The pure-Python fallback in
 * collectors/monitoring.py does the same work with per-thread dicts.
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

/* Swallow the current error, stop counting, tell on_fault. Returns None. */
static PyObject *
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
    Py_RETURN_NONE;
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
static PyObject *
lc_count_overflow(LineCounter *self, PyObject *code, PyObject *line)
{
    if (self->table->overflow == NULL) {
        /* Allocating may collect garbage, run finalizers, switch threads and let
         * take() swap the table: look at self->table again afterwards. */
        PyObject *fresh = PyDict_New();
        if (fresh == NULL) {
            return lc_fault(self);
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
    Py_RETURN_NONE;
error:
    Py_XDECREF(count);
    Py_XDECREF(one);
    Py_XDECREF(key);
    Py_DECREF(overflow);
    return lc_fault(self);
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

static PyObject *
lc_vectorcall(PyObject *self_obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    LineCounter *self = (LineCounter *)self_obj;
    if (PyVectorcall_NARGS(nargsf) != 2 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "LineCounter takes two positional arguments "
                                         "(code, line)");
        return NULL;
    }
    PyObject *code = args[0];
    long long line;
    int fits = line_value(args[1], &line);
    if (fits < 0) {
        return NULL;
    }
    if (self->faulted) {
        Py_RETURN_NONE;
    }
    if (self->exclude != NULL) {
        if (tls_serial != self->serial ? lc_decide_thread(self) : tls_excluded) {
            Py_RETURN_NONE;
        }
    }
    if (!fits) {
        return lc_count_overflow(self, code, args[1]);
    }
    /* From here on no Python code runs and the GIL is held throughout. */
    Entry *e = self->last;
    if (e == NULL || e->code != code) {
        e = table_entry(self->table, code, line);
        if (e == NULL) {
            return lc_fault(self);
        }
        self->last = e;
    }
    unsigned long long index = (unsigned long long)(line - e->lo);
    if (line < e->lo || index >= (unsigned long long)e->size) {
        int covered = entry_cover(e, line);
        if (covered < 0) {
            return lc_fault(self);
        }
        if (covered == 0) {
            return lc_count_overflow(self, code, args[1]);
        }
        index = (unsigned long long)(line - e->lo);
    }
    e->counts[index]++;
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
    return module;
}
