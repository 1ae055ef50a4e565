"""The runbook on a real stack: the shipped rules/ against what real exporters emit."""
