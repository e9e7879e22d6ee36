"""Recordings: the format and its writer (file.py), its reading as untrusted input
(reader.py, with inflate.py: bounded decompression, records.py: each record parsed
and checked, snapcheck.py: each snapshot checked), its replay on the page
(replay.py) and its exports for other tools (export.py, summary.py)."""
