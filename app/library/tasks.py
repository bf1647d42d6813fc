"""Library pipeline tasks (registered by the pipeline modules)."""
