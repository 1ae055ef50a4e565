"""The judgement of samples: the pure ``evaluate()``, coverage (did an evaluation judge the
version), outcomes in words, and replay, which runs the same judgement over a past time range.
"""
