#!/usr/bin/env python3
"""Writes the per-area Grafana dashboards under dashboards/ (the overview, agora-overview.json,
is edited by hand). Run after changing a panel here:  python3 scripts/dashboards.py

Every dashboard: a fixed uid, the `datasource`, `job` and `instance` variables, no
`__inputs`, so it provisions as it is. The test suite checks every metric used exists in a
real scrape and every query parses (promtool)."""
import copy
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "dashboards"
OVERVIEW = json.loads((ROOT / "agora-overview.json").read_text())
SEL = 'job=~"$job", instance=~"$instance"'
RATE = "[$__rate_interval]"
# Page routes: everything but the API, health checks, metrics and static files.
PAGES = 'http_route!~"/api/.*|/health/.*|/metrics|/static/.*|unmatched"'


def panel(pid, title, unit, targets, x, y, description):
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
        "targets": [
            {"refId": chr(65 + i), "expr": expr, "legendFormat": legend,
             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard(uid, title, panels):
    laid_out = []
    for index, (title_, unit, targets, description) in enumerate(panels):
        laid_out.append(panel(index + 1, title_, unit, targets, 12 * (index % 2), 8 * (index // 2), description))
    return {
        "uid": uid,
        "title": title,
        "tags": ["agora"],
        "timezone": "browser",
        "schemaVersion": OVERVIEW["schemaVersion"],
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": copy.deepcopy(OVERVIEW["templating"]),
        "annotations": {"list": []},
        "panels": laid_out,
    }


def quantiles(metric, by):
    return [
        (f"histogram_quantile({q}, sum by (le{', ' + by if by else ''}) (rate({metric}_bucket{{{SEL}}}{RATE})))",
         f"p{int(q * 100)}{' {{' + by + '}}' if by else ''}")
        for q in (0.5, 0.95, 0.99)
    ]


DASHBOARDS = {
    "agora-http": ("Agora / HTTP", [
        ("Requests per second by route", "reqps",
         [(f"sum by (http_route) (rate(http_server_request_duration_seconds_count{{{SEL}}}{RATE}))", "{{http_route}}")],
         "Which routes carry the traffic?"),
        ("Errors per second by route and status", "reqps",
         [(f'sum by (http_route, http_response_status_code) (rate(http_server_request_duration_seconds_count{{{SEL}, http_response_status_code=~"[45].."}}{RATE}))',
           "{{http_route}} {{http_response_status_code}}")],
         "Which routes fail, and how (4xx client mistakes vs 5xx our faults)?"),
        ("p95 latency by route", "s",
         [(f"histogram_quantile(0.95, sum by (le, http_route) (rate(http_server_request_duration_seconds_bucket{{{SEL}}}{RATE})))", "{{http_route}}")],
         "Which routes are slow?"),
        ("Latency p50 / p95 / p99, all routes", "s", quantiles("http_server_request_duration_seconds", ""),
         "How slow is the slowest part of the traffic?"),
        ("Requests in flight by method", "short",
         [(f"sum by (http_request_method) (http_server_active_requests{{{SEL}}})", "{{http_request_method}}")],
         "Is the server saturated right now?"),
        ("Rate-limited requests by class", "reqps",
         [(f"sum by (class) (rate(agora_rate_limited_requests_total{{{SEL}}}{RATE}))", "{{class}}")],
         "Are clients hitting the limits (abuse, or limits too tight)?"),
        ("Idempotent replays", "reqps",
         [(f"sum(rate(agora_idempotent_replays_total{{{SEL}}}{RATE}))", "replays")],
         "How often do clients retry writes with an Idempotency-Key?"),
        ("TLS certificate: days left and reloads", "short",
         [(f"(max(agora_tls_certificate_expiry_timestamp_seconds{{{SEL}}}) - time()) / 86400", "days left"),
          (f"sum by (outcome) (increase(agora_tls_reloads_total{{{SEL}}}[1h]))", "reloads {{outcome}} / h")],
         "When does the certificate expire, and did the last reload take?"),
        ("Cache hit ratio by cache", "percentunit",
         [(f'sum by (cache) (rate(agora_cache_requests_total{{{SEL}, result="hit"}}{RATE})) / clamp_min(sum by (cache) (rate(agora_cache_requests_total{{{SEL}}}{RATE})), 1e-9)', "{{cache}}"),
          (f'sum(rate(agora_cache_requests_total{{{SEL}, result="hit"}}{RATE})) / clamp_min(sum(rate(agora_cache_requests_total{{{SEL}}}{RATE})), 1e-9)', "all")],
         "How much of the read traffic is answered from memory, per kind of read?"),
        ("Cache memory held against the budget", "bytes",
         [(f"sum by (cache) (agora_cache_weighted_bytes{{{SEL}}})", "{{cache}}"),
          (f"max(agora_cache_max_bytes{{{SEL}}})", "budget (cache.max_memory_mib)")],
         "Is the cache budget big enough for what is read?"),
        ("Cache evictions and invalidations per second", "ops",
         [(f"sum by (cause) (rate(agora_cache_evictions_total{{{SEL}}}{RATE}))", "evicted: {{cause}}"),
          (f"sum by (source) (rate(agora_cache_invalidations_total{{{SEL}}}{RATE}))", "invalidated: {{source}}")],
         "Do entries leave for size (budget too small) or because writes made them stale?"),
        ("Other daemons and the invalidation listener", "short",
         [(f"max(agora_cache_peer_daemons{{{SEL}}})", "other daemons listening"),
          (f"min(agora_cache_listener_up{{{SEL}}})", "listener up"),
          (f"sum(increase(agora_cache_listener_reconnects_total{{{SEL}}}{RATE}))", "reconnects (each flushes)")],
         "Do the daemons sharing this database hear each other's writes?"),
    ]),
    "agora-pages": ("Agora / Pages", [
        ("Page views per second by page", "reqps",
         [(f'sum by (http_route) (rate(http_server_request_duration_seconds_count{{{SEL}, {PAGES}}}{RATE}))', "{{http_route}}")],
         "Which pages do browser users read and post to?"),
        ("p95 page latency by page", "s",
         [(f'histogram_quantile(0.95, sum by (le, http_route) (rate(http_server_request_duration_seconds_bucket{{{SEL}, {PAGES}}}{RATE})))', "{{http_route}}")],
         "Which page got slow? (Compare with the database units of work per view.)"),
        ("Database units of work per page view", "short",
         [(f"sum by (page) (rate(agora_page_db_queries_sum{{{SEL}}}{RATE})) / sum by (page) (rate(agora_page_db_queries_count{{{SEL}}}{RATE}))", "{{page}}")],
         "Constant per page by design: a rise means a page started making N+1 queries."),
        ("Listing cache hit ratio", "percentunit",
         [(f'sum(rate(agora_cache_requests_total{{{SEL}, cache="listings", result="hit"}}{RATE})) / sum(rate(agora_cache_requests_total{{{SEL}, cache="listings"}}{RATE}))', "hit ratio")],
         "How much of the front and community pages is served from memory?"),
        ("Page errors per second by status", "reqps",
         [(f'sum by (http_response_status_code) (rate(http_server_request_duration_seconds_count{{{SEL}, {PAGES}, http_response_status_code=~"[45].."}}{RATE}))', "{{http_response_status_code}}")],
         "Are browser users seeing error pages?"),
        ("Session refreshes and CSRF refusals", "ops",
         [(f"sum by (outcome) (rate(agora_page_session_refreshes_total{{{SEL}}}{RATE}))", "refresh {{outcome}}"),
          (f"sum by (reason) (rate(agora_page_csrf_refusals_total{{{SEL}}}{RATE}))", "CSRF refused: {{reason}}")],
         "Are sessions renewing quietly? Are forged or stale forms being refused?"),
    ]),
    "agora-database": ("Agora / Database", [
        ("Pool connections by role", "short",
         [(f"sum by (role) (agora_db_pool_connections{{{SEL}}})", "open {{role}}"),
          (f"sum by (role) (agora_db_pool_idle_connections{{{SEL}}})", "idle {{role}}"),
          (f"max by (role) (agora_db_pool_max_connections{{{SEL}}})", "max {{role}}")],
         "Is the pool big enough?"),
        ("Requests waiting for a connection", "short",
         [(f"sum by (role) (agora_db_pool_waiting_requests{{{SEL}}})", "{{role}}")],
         "Are requests queueing for the database?"),
        ("Query p95 by query and role", "s",
         [(f"histogram_quantile(0.95, sum by (le, query, role) (rate(agora_db_query_duration_seconds_bucket{{{SEL}}}{RATE})))", "{{query}} ({{role}})")],
         "Which query got slow?"),
        ("Queries per second by query", "ops",
         [(f"sum by (query) (rate(agora_db_query_duration_seconds_count{{{SEL}}}{RATE}))", "{{query}}")],
         "What does the database spend its time on?"),
        ("Query errors by query", "ops",
         [(f"sum by (query, role) (rate(agora_db_query_errors_total{{{SEL}}}{RATE}))", "{{query}} ({{role}})")],
         "Which queries fail?"),
        ("Database up by server", "short",
         [(f"min by (role, server) (agora_db_up{{{SEL}}})", "{{role}} {{server}}")],
         "Does each server answer (the readiness check for the primary, the probe for replicas)?"),
        ("Reads routed by role", "ops",
         [(f"sum by (role) (rate(agora_db_reads_routed_total{{{SEL}}}{RATE}))", "{{role}}"),
          (f"sum(rate(agora_db_replica_fallbacks_total{{{SEL}}}{RATE}))", "rerun on the primary after a replica failed")],
         "How much of the replica-tolerant reads do the replicas take? (Cache fills right after a write go to the primary.)"),
        ("Replica lag", "s",
         [(f"max by (server) (agora_db_replica_lag_seconds{{{SEL}}})", "{{server}}")],
         "How far behind the primary is each replica? Over database.max_replica_lag it serves no reads."),
        ("Replica lag in WAL bytes", "bytes",
         [(f"max by (server) (agora_db_replica_lag_bytes{{{SEL}}})", "{{server}}")],
         "How much WAL has each replica still to replay?"),
        ("Replicas serving reads", "short",
         [(f"min by (server) (agora_db_replica_healthy{{{SEL}}})", "{{server}}")],
         "Which replicas are in (1) and which are out (0)? /health/ready says why."),
        ("Query p95 by role", "s",
         [(f"histogram_quantile(0.95, sum by (le, role) (rate(agora_db_query_duration_seconds_bucket{{{SEL}}}{RATE})))", "{{role}}")],
         "Is the primary or a replica slower?"),
    ]),
    "agora-queue": ("Agora / Queue & workers", [
        ("Jobs by kind and state", "short",
         [(f"sum by (kind, state) (agora_queue_jobs{{{SEL}}})", "{{kind}} {{state}}")],
         "How much work waits, runs, or died?"),
        ("Oldest ready job", "s",
         [(f"max by (kind) (agora_queue_oldest_ready_age_seconds{{{SEL}}})", "{{kind}}")],
         "How long does a job wait for a worker?"),
        ("Enqueued and completed per second", "ops",
         [(f"sum by (kind) (rate(agora_queue_jobs_enqueued_total{{{SEL}}}{RATE}))", "{{kind}} enqueued"),
          (f"sum by (kind) (rate(agora_queue_jobs_completed_total{{{SEL}}}{RATE}))", "{{kind}} completed")],
         "Do the workers keep up with what arrives?"),
        ("Failures, retries and dead letters per second", "ops",
         [(f"sum by (kind) (rate(agora_queue_jobs_failed_total{{{SEL}}}{RATE}))", "{{kind}} failed"),
          (f"sum by (kind) (rate(agora_queue_jobs_retried_total{{{SEL}}}{RATE}))", "{{kind}} retried"),
          (f"sum by (kind) (rate(agora_queue_jobs_dead_lettered_total{{{SEL}}}{RATE}))", "{{kind}} dead-lettered")],
         "Are jobs failing, and do retries save them?"),
        ("Job duration p50 / p95 / p99", "s", quantiles("agora_queue_job_duration_seconds", "kind"),
         "How long does a job take?"),
        ("Emails by template and outcome", "ops",
         [(f"sum by (template, outcome) (rate(agora_emails_total{{{SEL}}}{RATE}))", "{{template}} {{outcome}}"),
          (f"histogram_quantile(0.95, sum by (le) (rate(agora_email_send_duration_seconds_bucket{{{SEL}}}{RATE})))", "SMTP p95 (s)")],
         "Does email go out, and how fast does the relay answer?"),
        ("Queue storage", "bytes",
         [(f"max(agora_queue_storage_bytes{{{SEL}}})", "queue on disk")],
         "How much disk does the queue take?"),
    ]),
    "agora-ai": ("Agora / AI summaries", [
        ("Provider calls by outcome", "ops",
         [(f"sum by (provider, outcome) (rate(agora_llm_calls_total{{{SEL}}}{RATE}))", "{{provider}} {{outcome}}")],
         "Do the providers answer?"),
        ("Provider latency p50 / p95 / p99", "s", quantiles("agora_llm_call_duration_seconds", "provider"),
         "How long do summaries take to write?"),
        ("Circuit breakers", "short",
         [(f"max by (provider) (agora_llm_breaker_state{{{SEL}}})", "{{provider}} (0 closed, 1 open, 2 half-open)")],
         "Is a provider switched off by its breaker?"),
        ("Fallbacks by provider and reason", "ops",
         [(f"sum by (provider, reason) (rate(agora_summaries_fallbacks_total{{{SEL}}}{RATE}))", "past {{provider}}: {{reason}}")],
         "How often does a summary skip a provider, and why?"),
        ("Tokens per hour", "short",
         [(f"sum by (provider, direction) (increase(agora_llm_tokens_total{{{SEL}}}[1h]))", "{{provider}} {{direction}}")],
         "How much text goes to and comes from the providers?"),
        ("Cost per day (USD)", "currencyUSD",
         [(f"sum by (provider) (increase(agora_llm_cost_usd_total{{{SEL}}}[1d]))", "{{provider}}")],
         "What do summaries cost?"),
        ("Summaries generated by provider", "ops",
         [(f"sum by (provider) (rate(agora_summaries_generated_total{{{SEL}}}{RATE}))", "{{provider}}")],
         "Who writes the summaries readers see?"),
        ("Summary requests: hits, stale, misses", "ops",
         [(f"sum by (result) (rate(agora_summaries_requests_total{{{SEL}}}{RATE}))", "{{result}}")],
         "How often is a ready summary served from the cache?"),
    ]),
    "agora-community": ("Agora / Community", [
        ("Registrations per hour", "short",
         [(f"sum(increase(agora_registrations_total{{{SEL}}}[1h]))", "registrations")],
         "Is the community growing?"),
        ("Sign-ins by outcome", "ops",
         [(f"sum by (outcome) (rate(agora_logins_total{{{SEL}}}{RATE}))", "{{outcome}}"),
          (f"sum by (outcome) (rate(agora_token_refreshes_total{{{SEL}}}{RATE}))", "refresh {{outcome}}")],
         "Do people sign in, and is anyone guessing passwords or replaying tokens?"),
        ("Posts and comments per hour", "short",
         [(f"sum(increase(agora_posts_created_total{{{SEL}}}[1h]))", "posts"),
          (f"sum(increase(agora_comments_created_total{{{SEL}}}[1h]))", "comments")],
         "How active is the community?"),
        ("Votes per second by target", "ops",
         [(f"sum by (target) (rate(agora_votes_total{{{SEL}}}{RATE}))", "{{target}}")],
         "How much do people vote?"),
        ("Active sessions", "short",
         [(f"sum(agora_active_sessions{{{SEL}}})", "sessions")],
         "How many people are signed in?"),
    ]),
    "agora-process": ("Agora / Process & host", [
        ("CPU", "percentunit",
         [(f"rate(process_cpu_seconds_total{{{SEL}}}{RATE})", "{{instance}} cores")],
         "How busy is the daemon?"),
        ("Memory", "bytes",
         [(f"process_resident_memory_bytes{{{SEL}}}", "{{instance}} resident"),
          (f"process_virtual_memory_bytes{{{SEL}}}", "{{instance}} virtual")],
         "Is memory bounded?"),
        ("File descriptors and threads", "short",
         [(f"process_open_fds{{{SEL}}}", "{{instance}} open fds"),
          (f"process_max_fds{{{SEL}}}", "{{instance}} fd limit"),
          (f"process_threads{{{SEL}}}", "{{instance}} threads")],
         "Is the daemon near its descriptor limit?"),
        ("State directory disk", "percentunit",
         [(f"1 - agora_state_dir_filesystem_avail_bytes{{{SEL}}} / agora_state_dir_filesystem_size_bytes{{{SEL}}}", "{{instance}} used")],
         "Will the disk holding the state directory fill?"),
        ("Storage by use", "bytes",
         [(f"max(agora_queue_storage_bytes{{{SEL}}})", "job queue"),
          (f"max(agora_backups_storage_bytes{{{SEL}}})", "backups")],
         "What takes the space?"),
        ("Backups: age of the last success and verification", "s",
         [(f"time() - max(agora_backup_last_success_timestamp_seconds{{{SEL}}})", "since the last backup"),
          (f"time() - max(agora_backup_last_verify_success_timestamp_seconds{{{SEL}}})", "since the last verification")],
         "Is there a recent, proven backup?"),
        ("Backup size and duration", "short",
         [(f"max(agora_backup_last_size_bytes{{{SEL}}})", "size (bytes)"),
          (f"max(agora_backup_last_duration_seconds{{{SEL}}})", "duration (s)")],
         "How big and slow are backups getting?"),
        ("Uptime", "s",
         [(f"time() - process_start_time_seconds{{{SEL}}}", "{{instance}}")],
         "Did the daemon restart?"),
    ]),
}

lines = ["# Dashboards", "",
         "Grafana dashboards in `dashboards/` (installed under `/usr/share/agora/dashboards/`,",
         "provisioned by `dashboards/provisioning/`). Each has the `datasource`, `job` and `instance`",
         "variables. Per dashboard, its panels and the question each answers. `scripts/dashboards.py`",
         "writes all but the overview.", "",
         "## Agora / Overview (`agora-overview`)", ""]
OVERVIEW_QUESTIONS = {
    "Requests per second by status": "How much traffic, and how much of it fails?",
    "Error ratio (5xx)": "What share of requests fail on our side (the availability SLO)?",
    "Latency p50 / p95 / p99": "How fast do users get answers?",
    "Saturation: in-flight requests and pool waiters": "Is the daemon or its database pool at capacity?",
    "Database pool": "How many connections are open, idle, allowed?",
    "Database query p95 by query": "Which query is slow?",
    "Database up and query errors": "Does the database answer, and which queries fail?",
    "Process memory and CPU": "Is the daemon using more memory or CPU than usual?",
    "Open file descriptors": "Is the daemon near its descriptor limit?",
    "Uptime and version": "Did it restart, and which version runs?",
    "Job queue depth by kind and state": "Is background work piling up?",
    "Oldest ready job age": "How long do jobs wait for a worker?",
    "Job outcomes per second": "Do jobs complete, retry, or die?",
    "Job duration p95": "How long do jobs take?",
    "Emails per second by outcome": "Does email go out?",
    "AI summaries: provider calls, fallbacks, breaker state": "Do the AI providers answer, or are we falling back?",
    "AI summaries: tokens and cost per hour": "What do summaries cost?",
    "Summary requests by result": "How often are summaries served from the cache?",
}
for p in OVERVIEW["panels"]:
    lines.append(f"- **{p['title']}**: {OVERVIEW_QUESTIONS.get(p['title'], '')}")
for uid, (title, panels) in DASHBOARDS.items():
    (ROOT / f"{uid}.json").write_text(json.dumps(dashboard(uid, title, panels), indent=2) + "\n")
    lines += ["", f"## {title} (`{uid}`)", ""]
    lines += [f"- **{p[0]}**: {p[3]}" for p in panels]
(ROOT.parent / "docs" / "dashboards.md").write_text("\n".join(lines) + "\n")
