"""Sending what the warehouse has to say: e-mail over SMTP and Telegram Bot API messages."""
