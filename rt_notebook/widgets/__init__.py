"""Widget building blocks of the chat panel: bubble HTML, exports and the composer."""
