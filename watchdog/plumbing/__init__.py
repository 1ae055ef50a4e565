"""Process-wide machinery: structured logs with the redactor, the service's own metrics, the one
outbound HTTP edge.
"""
