"""Models: registry of tiny configs, HF loading, tokenizer, prompt format and answer extraction."""
