"""Prompts around any causal LM: the model reads prompt vectors through ``inputs_embeds``."""
