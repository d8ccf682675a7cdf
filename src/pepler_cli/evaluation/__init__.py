"""``pepler score`` and ``pepler compare``: the paper's metrics, scores files, and comparisons of runs.

- ``metrics/``: each metric's formula (text quality, explainability, rating error), as EVALUATION.md states it
- ``catalogue.py``: every metric's key, label, meaning, decimals and direction, in the paper's order
- ``scoring.py``: all the metrics of a list of predictions
- ``scores_file.py``: the ``*.scores.yaml`` format
- ``provenance.py``: which run and decoding made a predictions file; the key its scores are recorded under
- ``score.py``: ``pepler score`` as a library call; ``comparison.py``: ``pepler compare``'s rows and renderers
"""
