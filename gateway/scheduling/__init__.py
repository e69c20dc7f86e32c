"""Timed jobs (event reminders, survey reminders and closes) on APScheduler."""
