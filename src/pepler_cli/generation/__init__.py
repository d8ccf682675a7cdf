"""``pepler generate``: decoding explanations with a trained run.

- ``incremental.py``: the prompted LM fed one token per step, reusing its key/value cache
- ``greedy.py``: the paper's greedy decoding (and the paper's full-prefix method, kept as the reference)
- ``beam.py``, ``sampling.py``: beam search; top-k and top-p sampling
- ``decode.py``: the options, the choice of method, decoding in batches
- ``generate.py``: a run explains one part of a split into a predictions file
"""
