from llmhist.cli.main import run

run()
