"""What is said about the settings: their generated reference page (``python -m
watchdog.config.settingsdoc``) and their errors in words. The Settings model itself is
:mod:`watchdog.settings`.
"""
