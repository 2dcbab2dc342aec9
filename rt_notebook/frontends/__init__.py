"""Front-end layer: magics, the chat panel, voice control, cell errors, warm-up."""
