"""Classify and caption videos: ``python infer.py VIDEO [VIDEO|DIR|GLOB ...] --ckpt CKPT`` (see ``vidrec.apps.infer_cli``)."""

from vidrec.apps.infer_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
