"""The CLI-side core: decides start, stop, status, apply and doctor, and returns data; never prints."""
