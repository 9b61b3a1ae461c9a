"""Models: the char tokenizer, tiny Llama/Qwen2 presets, the SFT recipe, the zoo, and loaders for real LMs."""
