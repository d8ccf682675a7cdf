"""The prepared dataset ``data/<name>/`` (docs/formats.md), a module a topic: ``layout`` (its file names),
``records`` (what it holds, in memory), ``writing`` (writing it atomically), ``reading`` (reading it back with
every file checked) and ``fingerprint`` (the hashes that name exactly which data a run was trained on).
"""
