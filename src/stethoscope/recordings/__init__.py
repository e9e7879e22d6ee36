"""Recordings: the file (file.py: writer and reader), its replay on the page
(replay.py) and its exports for other tools (export.py)."""
