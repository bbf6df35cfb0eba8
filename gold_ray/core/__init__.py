"""Pure math of GOLD: no Ray, no vLLM, no file I/O. Each function states shapes, signs and masks."""
