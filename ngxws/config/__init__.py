"""Config layer: crossplane parse -> directive checks -> immutable model."""
