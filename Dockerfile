FROM python:3.11-slim
WORKDIR /app
COPY . /app
# CPU torch in the same command as everything that needs it.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0 -e '.[s3,queue]' \
    $(for p in plugins/*/; do [ -f "$p/pyproject.toml" ] && printf -- '-e %s ' "$p"; done) \
 && for f in plugins/*/requirements-nodeps.txt; do pip install --no-cache-dir --no-deps -r "$f" || exit 1; done
EXPOSE 8000
CMD ["vectorfair", "serve", "--config", "configs/server.toml"]
