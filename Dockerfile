# Builds all three binaries into one small image; pick the binary with the
# container command (docker-compose.yml does).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
# The sample batch; /data is left for files mounted from the host.
COPY testdata/prompts.jsonl /sample/prompts.jsonl
USER nonroot
ENTRYPOINT []
CMD ["worker"]
