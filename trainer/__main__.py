"""`python -m trainer ...`: see trainer/cli.py."""



from trainer.cli import main  # noqa: E402

raise SystemExit(main())
