# Builds the single cioq binary (worker, serve, sandbox, enqueue, dlq, demo).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/cioq ./cmd/cioq

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cioq /usr/local/bin/cioq
USER nonroot
ENTRYPOINT ["/usr/local/bin/cioq"]
