"""OpenAI-compatible serving of local models."""
