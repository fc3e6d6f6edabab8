from mmpo.cli import run

run()
