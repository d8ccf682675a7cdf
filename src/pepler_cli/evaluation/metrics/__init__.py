"""The metrics: the paper's (see EVALUATION.md: text quality, explainability, rating error) and those beyond it
(mentions, grounding, diversity, popularity, meaning, fluency).

One module a topic; ``evaluation.scoring`` and ``evaluation.beyond`` join them. This package file imports nothing,
so that a light module (``tokens``, say) can be used without pulling in torch through ``meaning``.
"""
