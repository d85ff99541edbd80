# Stand-in for the official python:3.11-slim-bookworm (see build-bases.sh): Debian's Python 3.11
# with venv and pip, and `python`/`pip` on PATH as the official image has them.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python3 \
    && ln -s /usr/bin/pip3 /usr/local/bin/pip \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
