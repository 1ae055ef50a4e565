"""What a deployment may be before its window opens: admission (a known plan, a previous version
seen running) and the open-window limit.
"""
