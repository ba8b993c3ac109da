"""Classify and caption videos: ``python infer.py VIDEO [VIDEO|DIR|GLOB ...] --ckpt CKPT`` (see ``vidrec.predict``)."""

from vidrec.predict import main

if __name__ == "__main__":
    raise SystemExit(main())
