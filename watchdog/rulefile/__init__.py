"""Rule files: schema, threshold grammar, templating, loading with file:line errors."""
