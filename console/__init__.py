"""The admin console: Engramia's admin site, dashboard, recall playground and audit export."""
