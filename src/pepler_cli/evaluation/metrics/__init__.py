"""The paper's evaluation (see EVALUATION.md): text quality, explainability and rating error.

One module a topic; ``evaluation.scoring.score_predictions`` joins them. This package file imports nothing so that
``pepler_cli.evaluation.metrics.tokens`` can be used without pulling in rouge-score.
"""
