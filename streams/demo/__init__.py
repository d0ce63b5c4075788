"""The demo: real data through a real broker, accounted record by record."""
