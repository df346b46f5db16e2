"""The hot path: the plain forms of `start`, `stop`, `restart`, `status`, `check`, `connect`,
`tools`, `call` and `ping`, parsed and
run without typer or click (`hot.run`); everything else (help, a usage error, any other command) goes
to the typer app. The command bodies live here, and the typer commands call the same ones."""
