"""Log-in throttling: failed log-ins counted per user name and per client address in the database,
a timed lock-out with the time it ends. Reusable by every log-in and password-reset form
(``forms.ThrottledLoginMixin``) — the back office's now, the customer portal's later."""
