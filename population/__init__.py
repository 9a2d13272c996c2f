"""The evolving population: seed, experts as LoRA adapters, operators, vLLM serving."""
