"""The merchant dashboard: server-rendered pages (Jinja2, autoescaped; its own small script and
stylesheet, no CDN) over the same services as the API. It owns no table: it reads and writes
only through the other domains' services, and every page is scoped to one business the
signed-in person may open (another business's ids answer 404, as in the API)."""
