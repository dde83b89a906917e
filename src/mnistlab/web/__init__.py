"""The web page: `mnistlab serve`."""
