// Loaded after htmx and before the page is ready: htmx would otherwise inject its indicator
// <style> element, which the admin's Content-Security-Policy refuses (console.css has the rules).
htmx.config.includeIndicatorStyles = false;
