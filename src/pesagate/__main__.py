from pesagate.cli import app

app()
