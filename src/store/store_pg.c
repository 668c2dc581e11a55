/* The PostgreSQL backend of the store port (store_internal.h; DESIGN.md "Ports and backends"):
 * the same operations with the same results and statuses as store_sqlite.c, through libpq, for
 * `postgres://` and `postgresql://` URLs (libpq parses them: PQconnectdbParams with
 * expand_dbname).
 *
 * Decisions, in short:
 *   - Every statement comes from the fixed SQL table below and is prepared once per connection
 *     (on first use; again after a reconnect); values are only ever parameters. Lists travel
 *     as one array parameter (text[] or bigint[] literals built here, every element quoted).
 *   - Round trips are what costs, so statements are sent in pipeline mode: the transaction
 *     control a request does not need an answer from (BEGIN, SAVEPOINT, RELEASE) rides along
 *     with the next statement that does, and an operation's independent statements go
 *     together. Message ingest, the hot path, is set-based: ONE statement (a data-modifying
 *     CTE over array parameters) finds or creates the visitors, checks the idempotency keys,
 *     finds, creates or updates the conversations, inserts the messages and their outbox
 *     events for a whole run of up to 1024 messages, with the effect of running them one
 *     after another, and writes nothing for a message it refuses. Its work is per visitor
 *     where it can be: one lookup of the visitor and its current conversation, and one
 *     update of each (with the aggregate of the visitor's messages), however many messages
 *     the visitor has in the run; ids are drawn from the sequences in the statement, so no
 *     join between the statement's own rows is needed. message_ingest_batch sends the run in
 *     one pipeline inside one savepoint: a group commit costs two round trips and the
 *     server's per-statement work is paid once per run. (A run where one visitor's messages
 *     differ in history visibility, or carry metadata that may not create a conversation, is
 *     sent as rounds instead: the k-th message of each visitor in statement k.) If a statement
 *     fails with an error, the run is rolled back to that savepoint and replayed one request
 *     per savepoint, which gives exactly the per-request semantics of store.c's generic path.
 *   - The connection is non-blocking and every wait is a poll() with a deadline, so a store
 *     thread never waits forever: connect_timeout 5 s, statement_timeout 60 s (lock_timeout =
 *     the store's busy timeout), TCP keepalives and tcp_user_timeout for a peer that vanished,
 *     and a client-side backstop of 75 s per wait.
 *   - Outages: an error of the connection (or SQLSTATE class 08, 57P01-57P03) drops the
 *     connection and fails the request with PL_EUNAVAIL; the next request (store.c's begin)
 *     reconnects, at once the first time, then with an exponential backoff from 100 ms to 5 s
 *     between attempts (requests in between fail at once), and re-prepares lazily. A
 *     connection the server closed while idle is noticed at begin and replaced before the
 *     batch starts. COMMIT counts only when the server answers COMMIT (a commit whose answer
 *     is lost reports PL_EUNAVAIL: the client retries, and ingest's idempotency key makes the
 *     retry harmless).
 *   - Transactions: writes run in READ COMMITTED (the default) inside store.c's group commit;
 *     reads run in REPEATABLE READ READ ONLY, so a read batch shares one snapshot as SQLite's
 *     do. A read that fails with an error aborts its snapshot; the next read of the batch
 *     starts a fresh one (each read still fails alone).
 *   - Status mapping as SQLite's: 23505 unique -> STORE_ECONFLICT, 23503 foreign key ->
 *     STORE_ENOTFOUND, 23514 check and 23502 not null and class 22 (bad data, e.g. invalid
 *     JSON or UTF-8) -> PL_EINVAL, 54000 (a value too large for an index) -> PL_ETOOBIG,
 *     everything else (connection, timeouts, lock waits, ...) -> PL_EUNAVAIL, logged once.
 *   - JSON columns use PostgreSQL's JSON type (migrations.c): the text comes back byte for
 *     byte. Whether a text is a JSON object (widget settings, session metadata) is decided
 *     here with jansson, as SQLite's json_valid/json_type decide it there.
 *   - Pool: one connection per store thread (the write thread and the read thread), so a node
 *     holds two connections; store.c keeps reads on one thread because it delivers them in
 *     submission order.
 * Each connection is used by one thread at a time, as store.c guarantees. */
#include "store/store_internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- limits and timings ---------------------------------------------------------------------- */

#define PQ_CONNECT_TIMEOUT_S "5"       /* libpq connect_timeout, seconds */
#define PQ_STATEMENT_TIMEOUT_MS 60000u /* server-side statement_timeout */
/* The longest a store thread waits for the socket before giving the connection up: the
 * statement timeout plus a margin for the server to report it. */
#define PQ_IO_TIMEOUT_MS 75000
#define PQ_BACKOFF_MIN_MS 100u  /* wait after the first failed reconnection attempt */
#define PQ_BACKOFF_MAX_MS 5000u /* the cap of the exponential backoff */
/* pg_advisory_xact_lock key of the migrations: "parley" in ASCII. */
#define PQ_MIGRATION_LOCK_KEY "123563833845113"
#define PQ_MAX_PARAMS 16
/* Most messages in one ingest statement: store.c's largest run (INGEST_RUN_MAX). The statement
 * has no join between its own rows (window functions and lookups by index only), so its cost
 * grows as m log m at worst; the per-statement cost is shared by the whole run. */
#define PQ_ROUND_MAX 1024
/* STORE_SNIPPET_CHARS as SQL text (left() counts code points in a UTF8 database). */
#define PQ_SNIPPET_CHARS "100"
_Static_assert(STORE_SNIPPET_CHARS == 100, "PQ_SNIPPET_CHARS must match STORE_SNIPPET_CHARS");

/* ---- the SQL --------------------------------------------------------------------------------- */

typedef enum {
    PQ_BEGIN_WRITE,
    PQ_BEGIN_READ,
    PQ_COMMIT,
    PQ_ROLLBACK,
    PQ_SAVEPOINT,
    PQ_RELEASE,
    PQ_ROLLBACK_TO,
    PQ_SAVEPOINT_RUN,
    PQ_RELEASE_RUN,
    PQ_ROLLBACK_TO_RUN,
    PQ_MIGRATION_SETTINGS,
    PQ_MIGRATION_LOCK,
    PQ_SCHEMA_VERSION,
    PQ_SCHEMA_STAMP,
    PQ_PROJECT_INSERT,
    PQ_PROJECT_GET,
    PQ_PROJECT_LIST,
    PQ_PROJECT_TOUCH,
    PQ_PROJECT_COUNT,
    PQ_PROJECT_EXISTS,
    PQ_PROJECT_UPDATE,
    PQ_PROJECT_SETTINGS,
    PQ_PROJECTS_OF_USER,
    PQ_DOMAINS_OF,
    PQ_DOMAINS_ALL,
    PQ_DOMAINS_OF_USER,
    PQ_DOMAINS_ADD,
    PQ_DOMAINS_DELETE,
    PQ_DOMAINS_CLEAR,
    PQ_VISITOR_SEEN,
    PQ_VISITOR_CONTEXT,
    PQ_VISITOR_GET_IN,
    PQ_CONV_CURRENT_ACTIVE,
    PQ_CONV_CURRENT_FOREVER,
    PQ_HISTORY_ACTIVE,
    PQ_HISTORY_FOREVER,
    PQ_MESSAGE_INGEST,
    PQ_CONV_GET,
    PQ_USER_INSERT,
    PQ_USER_GET,
    PQ_USER_BY_EMAIL,
    PQ_USER_REVOKE,
    PQ_MEMBER_UPSERT,
    PQ_MEMBER_ROLE,
    PQ_MEMBERS_OF,
    PQ_REFRESH_INSERT,
    PQ_REFRESH_SET_FAMILY,
    PQ_REFRESH_FAMILY_STATE,
    PQ_REFRESH_PRUNE,
    PQ_REFRESH_FIND,
    PQ_REFRESH_USE,
    PQ_REFRESH_REVOKE_FAMILY,
    PQ_REFRESH_REVOKE_ONE,
    PQ_REFRESH_REVOKE_USER,
    PQ_CONV_PAGE_ONE,
    PQ_CONV_PAGE_MASK,
    PQ_CONV_COUNT,
    PQ_CONV_VISITOR_UID,
    PQ_CONV_ON_REPLY,
    PQ_CONV_UPDATE,
    PQ_CONV_ASSIGN,
    PQ_CONV_DELETE,
    PQ_MESSAGE_PAGE,
    PQ_MESSAGE_INSERT_AGENT,
    PQ_OUTBOX_FETCH,
    PQ_OUTBOX_DELETE,
    PQ__COUNT
} pq_stmt_id_t;

#define PQ_PROJECT_COLUMNS                                                                         \
    "id, name, widget_settings, identity_verification, identity_secret, created_at, updated_at"
#define PQ_VISITOR_COLUMNS "id, project_id, uid, name, email, current_url, last_seen_at, created_at"
#define PQ_MESSAGE_COLUMNS                                                                         \
    "id, conversation_id, project_id, visitor_id, content, sender_id, from_customer, user_id, "    \
    "status, content_type, metadata, temp_id, created_at"
/* A conversation with its visitor: the columns pq_conversation_from_row reads (twenty). */
#define PQ_CONV_SELECT                                                                             \
    "SELECT c.id, c.project_id, c.visitor_id, c.assignee_id, c.status, c.last_message_snippet, "   \
    "c.last_message_timestamp, c.unread_count, c.metadata, c.url_history, c.created_at, "          \
    "c.updated_at, v.id, v.project_id, v.uid, v.name, v.email, v.current_url, v.last_seen_at, "    \
    "v.created_at FROM conversations AS c JOIN visitors AS v ON v.id = c.visitor_id "
#define PQ_CONV_NEWEST_FIRST " ORDER BY c.last_message_timestamp DESC, c.id DESC"
#define PQ_USER_COLUMNS "id, email, full_name, password_hash, tokens_valid_from, created_at"
/* The current conversation of a visitor (store.h): its id through the unique index
 * (project_id, uid), then the index (visitor_id, id) walked backwards. */
#define PQ_ACTIVE "status IN ('open', 'pending')"
#define PQ_FOREVER "status <> 'spam'"
#define PQ_CURRENT(cond)                                                                           \
    "SELECT id FROM conversations WHERE visitor_id = (SELECT id FROM visitors "                    \
    "WHERE project_id = $1::bigint AND uid = $2::text) AND " cond " ORDER BY id DESC LIMIT 1"
/* The newest $3 messages of the current conversation (its id in column 0; no row when there is
 * no current conversation). */
#define PQ_HISTORY(cond)                                                                           \
    "SELECT k.id, m.* FROM (" PQ_CURRENT(                                                          \
        cond) ") AS k LEFT JOIN LATERAL (SELECT " PQ_MESSAGE_COLUMNS                               \
              " FROM messages WHERE conversation_id = k.id ORDER BY id DESC "                      \
              "LIMIT $3::bigint) AS m ON TRUE"

static const char *const g_sql[PQ__COUNT] = {
    [PQ_BEGIN_WRITE] = "BEGIN",
    [PQ_BEGIN_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    [PQ_COMMIT] = "COMMIT",
    [PQ_ROLLBACK] = "ROLLBACK",
    [PQ_SAVEPOINT] = "SAVEPOINT req",
    [PQ_RELEASE] = "RELEASE SAVEPOINT req",
    [PQ_ROLLBACK_TO] = "ROLLBACK TO SAVEPOINT req",
    [PQ_SAVEPOINT_RUN] = "SAVEPOINT run",
    [PQ_RELEASE_RUN] = "RELEASE SAVEPOINT run",
    [PQ_ROLLBACK_TO_RUN] = "ROLLBACK TO SAVEPOINT run",
    /* A migration may wait long for another node's (the lock) and run long (an index on a big
     * table): the session's timeouts do not apply to it. */
    [PQ_MIGRATION_SETTINGS] = ("SELECT set_config('lock_timeout', '600s', true), "
                               "set_config('statement_timeout', '0', true)"),
    [PQ_MIGRATION_LOCK] = "SELECT pg_advisory_xact_lock(" PQ_MIGRATION_LOCK_KEY ")",
    [PQ_SCHEMA_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
    [PQ_SCHEMA_STAMP] = ("INSERT INTO schema_migrations (version, applied_at) "
                         "VALUES ($1::bigint, $2::bigint)"),
    [PQ_PROJECT_INSERT] = ("INSERT INTO projects (name, created_at, updated_at) "
                           "VALUES ($1::text, $2::bigint, $2::bigint) RETURNING id"),
    [PQ_PROJECT_GET] = "SELECT " PQ_PROJECT_COLUMNS " FROM projects WHERE id = $1::bigint",
    [PQ_PROJECT_LIST] = "SELECT " PQ_PROJECT_COLUMNS " FROM projects ORDER BY id",
    [PQ_PROJECT_TOUCH] = "UPDATE projects SET updated_at = $2::bigint WHERE id = $1::bigint",
    [PQ_PROJECT_COUNT] = "SELECT count(*) FROM projects",
    [PQ_PROJECT_EXISTS] = "SELECT id FROM projects WHERE id = $1::bigint",
    [PQ_PROJECT_UPDATE] = ("UPDATE projects SET name = coalesce($2::text, name), "
                           "updated_at = $3::bigint WHERE id = $1::bigint"),
    /* Called with a text already known to be a JSON object. */
    [PQ_PROJECT_SETTINGS] = ("UPDATE projects SET widget_settings = $2::json, "
                             "updated_at = $3::bigint WHERE id = $1::bigint"),
    [PQ_PROJECTS_OF_USER] = ("SELECT p.id, p.name, p.widget_settings, p.identity_verification, "
                             "p.identity_secret, p.created_at, p.updated_at, m.role "
                             "FROM project_members AS m JOIN projects AS p ON p.id = m.project_id "
                             "WHERE m.user_id = $1::bigint ORDER BY p.id"),
    [PQ_DOMAINS_OF] = ("SELECT domain FROM project_domains WHERE project_id = $1::bigint "
                       "ORDER BY id"),
    [PQ_DOMAINS_ALL] = "SELECT project_id, domain FROM project_domains ORDER BY project_id, id",
    [PQ_DOMAINS_OF_USER] = ("SELECT d.project_id, d.domain FROM project_members AS m "
                            "JOIN project_domains AS d ON d.project_id = m.project_id "
                            "WHERE m.user_id = $1::bigint ORDER BY d.project_id, d.id"),
    /* The list in its order (the surrogate ids keep it); an entry already there, or given
     * twice, is inserted once. */
    [PQ_DOMAINS_ADD] = ("INSERT INTO project_domains (project_id, domain) "
                        "SELECT $1::bigint, d.domain FROM unnest($2::text[]) WITH ORDINALITY "
                        "AS d(domain, n) ORDER BY d.n ON CONFLICT (project_id, domain) DO NOTHING"),
    [PQ_DOMAINS_DELETE] = ("DELETE FROM project_domains WHERE project_id = $1::bigint "
                           "AND domain = ANY ($2::text[])"),
    [PQ_DOMAINS_CLEAR] = "DELETE FROM project_domains WHERE project_id = $1::bigint",
    /* Find or create the visitor, last_seen_at never backwards. The update goes first so that
     * a known visitor costs no sequence number; the insert's ON CONFLICT covers another node
     * creating the same visitor meanwhile. A missing project fails the foreign key. */
    [PQ_VISITOR_SEEN] =
        ("WITH u AS (UPDATE visitors SET last_seen_at = greatest(last_seen_at, $3::bigint) "
         "WHERE project_id = $1::bigint AND uid = $2::text RETURNING " PQ_VISITOR_COLUMNS "), "
         "i AS (INSERT INTO visitors (project_id, uid, last_seen_at, created_at) "
         "SELECT $1::bigint, $2::text, $3::bigint, $3::bigint WHERE NOT EXISTS (SELECT 1 FROM u) "
         "ON CONFLICT (project_id, uid) DO UPDATE SET last_seen_at = "
         "greatest(visitors.last_seen_at, excluded.last_seen_at) RETURNING " PQ_VISITOR_COLUMNS
         ") SELECT * FROM u UNION ALL SELECT * FROM i"),
    /* updateContext in one statement: the visitor's URL, then {"url","at"} appended to the
     * url_history of its limit_to_active current conversation, keeping the newest $6.
     * Columns: the visitor's id (NULL: no such visitor), the conversation's (NULL: none). */
    [PQ_VISITOR_CONTEXT] =
        ("WITH v AS (UPDATE visitors SET current_url = $3::text, "
         "last_seen_at = greatest(last_seen_at, $4::bigint) "
         "WHERE project_id = $1::bigint AND uid = $2::text RETURNING id), "
         "k AS (SELECT c.id FROM conversations AS c, v WHERE c.visitor_id = v.id AND c." PQ_ACTIVE
         " ORDER BY c.id DESC LIMIT 1), "
         "h AS (UPDATE conversations AS c SET updated_at = $4::bigint, url_history = ("
         "SELECT json_agg(x.e ORDER BY x.n) FROM (SELECT a.e, a.n FROM ("
         "SELECT e, n FROM json_array_elements(coalesce(c.url_history, '[]'::json)) "
         "WITH ORDINALITY AS t(e, n) UNION ALL SELECT json_build_object('url', $3::text, "
         "'at', $5::text), 9223372036854775807) AS a ORDER BY a.n DESC LIMIT $6::bigint) AS x) "
         "FROM k WHERE c.id = k.id RETURNING c.id) "
         "SELECT (SELECT id FROM v), (SELECT id FROM h)"),
    [PQ_VISITOR_GET_IN] = ("SELECT " PQ_VISITOR_COLUMNS " FROM visitors "
                           "WHERE id = $1::bigint AND project_id = $2::bigint"),
    [PQ_CONV_CURRENT_ACTIVE] = PQ_CURRENT(PQ_ACTIVE),
    [PQ_CONV_CURRENT_FOREVER] = PQ_CURRENT(PQ_FOREVER),
    [PQ_HISTORY_ACTIVE] = PQ_HISTORY(PQ_ACTIVE),
    [PQ_HISTORY_FOREVER] = PQ_HISTORY(PQ_FOREVER),
    /* store_message_ingest for a run of messages in ONE statement (store.h steps 1 to 6),
     * with exactly the effect of running them one after another. The i-th element of each
     * array parameter is the i-th message (position n = i + 1): $1 projects, $2 uids, $3 nows,
     * $4 temp_ids, $5 forever, $6 contents, $7 session metadata (NULL unless a JSON object),
     * $8 whether a new conversation may be created (no metadata, or a JSON object), $9 g: the
     * position of the first message of the same visitor (project, uid), $10 the position of
     * the first message of the same visitor with the same temp_id; the outbox events as $11
     * the message's position, $12 topics, $13 payloads, $14 the message's now. The caller
     * (pq_plan) guarantees that a visitor with several messages in one statement has the same
     * forever and a metadata that may create in each, so that the only refusal inside a
     * visitor's messages is for all of them (no project).
     * Work is per visitor, not per message: the lookups (project, visitor, current
     * conversation) run once per visitor (its first message, n = g) and window functions
     * (PARTITION BY g, no joins between the statement's own rows) spread them; the visitor
     * and its conversation are written ONCE with the aggregate of its messages (unread_count
     * + count, the last message's snippet and time); only the idempotency check is per
     * message. Every id is drawn here from its sequence, in message order, so the result needs
     * no join back: a new visitor's (n = g), a new conversation's (its first message written,
     * n = fa), each message's and each outbox event's (in event order: their array comes on
     * the row of position 1, for the accepted messages' events in order). A visitor another
     * transaction created meanwhile (unique conflict) makes column 16 (ok) false and nothing
     * else is written: the caller replays. A refused message writes nothing; a duplicate
     * only moves last_seen_at. 'acc' = the message is written.
     * One row per message, in order: 0 position, 1 project exists, 2 acc, 3 visitor id, 4
     * conversation id, 5 conversation created, 6 reopened, 7 new message id, 8-20 the original
     * message of a duplicate of a stored one (PQ_MESSAGE_COLUMNS, else NULL), 21 the outbox
     * ids (position 1 only), 22 ok, 23 tn ($10). */
    [PQ_MESSAGE_INGEST] =
        ("WITH i AS (SELECT * FROM unnest($1::bigint[],$2::text[],$3::bigint[],$4::text[],"
         "$5::boolean[],$6::text[],$7::json[],$8::boolean[],$9::bigint[],$10::bigint[]) "
         "WITH ORDINALITY AS t(pr,uid,now,tid,fe,ct,meta,mok,g,tn,n)),"
         "l AS (SELECT i.*,p.id AS pid,v.id AS vid0,c.id AS cur0,c.status = 'solved' AS sv0,"
         "CASE WHEN i.n = i.g AND p.id IS NOT NULL AND v.id IS NULL AND i.mok "
         "THEN nextval('visitors_id_seq') END AS nvid FROM i "
         "LEFT JOIN LATERAL (SELECT id FROM projects WHERE id = i.pr AND i.n = i.g LIMIT 1) AS p "
         "ON TRUE "
         "LEFT JOIN LATERAL (SELECT id FROM visitors WHERE project_id = i.pr AND uid = i.uid "
         "AND i.n = i.g LIMIT 1) AS v ON TRUE "
         "LEFT JOIN LATERAL (SELECT id,status FROM conversations WHERE visitor_id = v.id AND "
         "CASE WHEN i.fe THEN " PQ_FOREVER " ELSE " PQ_ACTIVE " END ORDER BY id DESC LIMIT 1) "
         "AS c ON TRUE),"
         "s AS (SELECT n,g,tn,pr,uid,now,tid,fe,ct,meta,mok,nvid,"
         "max(pid) OVER w IS NOT NULL AS hp,max(vid0) OVER w AS vid,max(nvid) OVER w AS gvid,"
         "max(cur0) OVER w AS cur,coalesce(bool_or(sv0) OVER w,FALSE) AS sv FROM l "
         "WINDOW w AS (PARTITION BY g)),"
         "d AS (SELECT s.*,d.id AS dup,hp AND d.id IS NULL AND tn = n AND (cur IS NOT NULL "
         "OR mok) AS acc,hp AND (d.id IS NOT NULL OR tn <> n OR cur IS NOT NULL OR mok) AS tch "
         "FROM s LEFT JOIN LATERAL (SELECT id FROM messages WHERE visitor_id = s.vid "
         "AND temp_id = s.tid LIMIT 1) AS d ON TRUE),"
         "a AS (SELECT d.*,min(n) FILTER (WHERE acc) OVER w AS fa,"
         "count(*) FILTER (WHERE acc) OVER w AS cnt,"
         "left(last_value(ct) OVER w," PQ_SNIPPET_CHARS ") AS lc,"
         "last_value(now) OVER w AS ln,max(now) FILTER (WHERE tch) OVER w AS seen FROM d "
         "WINDOW w AS (PARTITION BY g ORDER BY acc,n ROWS BETWEEN UNBOUNDED PRECEDING AND "
         "UNBOUNDED FOLLOWING)),"
         "m AS (SELECT a.*,CASE WHEN acc THEN nextval('messages_id_seq') END AS mid,"
         "CASE WHEN n = fa AND cur IS NULL THEN nextval('conversations_id_seq') END "
         "AS ncid FROM a ORDER BY n),"
         "f AS (SELECT m.*,coalesce(vid,gvid) AS vi,"
         "coalesce(cur,max(ncid) OVER (PARTITION BY g)) AS ci FROM m),"
         "vi AS (INSERT INTO visitors (id,project_id,uid,last_seen_at,created_at) "
         "SELECT nvid,pr,uid,seen,now FROM f WHERE nvid IS NOT NULL "
         "ON CONFLICT DO NOTHING RETURNING 1),"
         "ok AS (SELECT count(*) = (SELECT count(nvid) FROM f) AS ok FROM vi),"
         "vu AS (UPDATE visitors AS v SET last_seen_at = greatest(v.last_seen_at,x.seen) "
         "FROM (SELECT vid,seen FROM f WHERE n = g AND seen IS NOT NULL OFFSET 0) AS x "
         "WHERE v.id = x.vid AND (SELECT ok FROM ok)),"
         "cn AS (INSERT INTO conversations (id,project_id,visitor_id,status,"
         "last_message_snippet,last_message_timestamp,unread_count,metadata,created_at,"
         "updated_at) SELECT ncid,pr,vi,'open',lc,ln,cnt,"
         "meta,now,ln FROM f WHERE ncid IS NOT NULL AND (SELECT ok FROM ok)),"
         "cu AS (UPDATE conversations AS c SET last_message_snippet = x.lc,"
         "last_message_timestamp = x.ln,updated_at = x.ln,"
         "unread_count = c.unread_count + x.cnt,status = CASE WHEN x.ro THEN 'open' "
         "ELSE c.status END FROM (SELECT cur,lc,ln,cnt,fe AND sv AS ro FROM f "
         "WHERE n = g AND cnt > 0 AND cur IS NOT NULL OFFSET 0) AS x "
         "WHERE c.id = x.cur AND (SELECT ok FROM ok)),"
         "ms AS (INSERT INTO messages (id,conversation_id,project_id,visitor_id,content,"
         "sender_id,from_customer,status,temp_id,created_at) SELECT mid,ci,pr,vi,"
         "ct,uid,TRUE,'sent',tid,now FROM f WHERE acc AND (SELECT ok FROM ok)),"
         "ev AS (SELECT e.*,nextval('outbox_id_seq') AS id FROM (SELECT * FROM "
         "unnest($11::bigint[],$12::text[],$13::text[],$14::bigint[]) WITH ORDINALITY "
         "AS e(n,topic,payload,now,o) WHERE (SELECT array_agg(acc ORDER BY n) FROM f)[e.n] "
         "AND (SELECT ok FROM ok) ORDER BY o OFFSET 0) AS e),"
         "ob AS (INSERT INTO outbox (id,topic,payload,created_at) "
         "SELECT id,topic,payload,now FROM ev) "
         "SELECT f.n,f.hp,f.acc,f.vi,f.ci,f.ncid IS NOT NULL,f.n = f.fa AND f.cur "
         "IS NOT NULL AND f.fe AND f.sv,f.mid,x.*,CASE WHEN f.n = 1 THEN (SELECT "
         "array_agg(id ORDER BY o) FROM ev) END,(SELECT ok FROM ok),f.tn FROM f "
         "LEFT JOIN LATERAL (SELECT " PQ_MESSAGE_COLUMNS " FROM messages WHERE id = f.dup LIMIT 1) "
         "AS x ON TRUE ORDER BY f.n"),
    [PQ_CONV_GET] = PQ_CONV_SELECT "WHERE c.id = $1::bigint AND c.project_id = $2::bigint",
    [PQ_USER_INSERT] = ("INSERT INTO users (email, password_hash, full_name, created_at, "
                        "updated_at) VALUES ($1::text, $2::text, $3::text, $4::bigint, "
                        "$4::bigint) RETURNING " PQ_USER_COLUMNS),
    [PQ_USER_GET] = "SELECT " PQ_USER_COLUMNS " FROM users WHERE id = $1::bigint",
    [PQ_USER_BY_EMAIL] = "SELECT " PQ_USER_COLUMNS " FROM users WHERE email = $1::text",
    [PQ_USER_REVOKE] = ("UPDATE users SET tokens_valid_from = greatest(tokens_valid_from, "
                        "$2::bigint), updated_at = $2::bigint WHERE id = $1::bigint"),
    [PQ_MEMBER_UPSERT] = ("INSERT INTO project_members (project_id, user_id, role, created_at) "
                          "VALUES ($1::bigint, $2::bigint, $3::text, $4::bigint) "
                          "ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role"),
    [PQ_MEMBER_ROLE] = ("SELECT role FROM project_members WHERE project_id = $1::bigint "
                        "AND user_id = $2::bigint"),
    [PQ_MEMBERS_OF] = ("SELECT u.id, u.email, u.full_name, m.role FROM project_members AS m "
                       "JOIN users AS u ON u.id = m.user_id WHERE m.project_id = $1::bigint "
                       "ORDER BY u.id"),
    /* Refresh tokens. A new family is numbered after its first row: inserted with family 0,
     * then set to the row id (PQ_REFRESH_SET_FAMILY). */
    [PQ_REFRESH_INSERT] = ("INSERT INTO refresh_tokens (user_id, family_id, token_hash, "
                           "expires_at, created_at) VALUES ($1::bigint, $2::bigint, $3::text, "
                           "$4::bigint, $5::bigint) RETURNING id"),
    [PQ_REFRESH_SET_FAMILY] = "UPDATE refresh_tokens SET family_id = id WHERE id = $1::bigint",
    [PQ_REFRESH_FAMILY_STATE] = ("SELECT count(*), count(revoked_at) FROM refresh_tokens "
                                 "WHERE family_id = $1::bigint AND user_id = $2::bigint"),
    [PQ_REFRESH_PRUNE] = ("DELETE FROM refresh_tokens WHERE user_id = $1::bigint "
                          "AND expires_at < $2::bigint"),
    [PQ_REFRESH_FIND] = ("SELECT id, user_id, family_id, expires_at, "
                         "used_at IS NOT NULL OR revoked_at IS NOT NULL "
                         "FROM refresh_tokens WHERE token_hash = $1::text"),
    [PQ_REFRESH_USE] = "UPDATE refresh_tokens SET used_at = $2::bigint WHERE id = $1::bigint",
    [PQ_REFRESH_REVOKE_FAMILY] = ("UPDATE refresh_tokens SET revoked_at = $2::bigint "
                                  "WHERE family_id = $1::bigint AND revoked_at IS NULL"),
    [PQ_REFRESH_REVOKE_ONE] = ("UPDATE refresh_tokens SET revoked_at = $2::bigint "
                               "WHERE token_hash = $1::text AND revoked_at IS NULL"),
    [PQ_REFRESH_REVOKE_USER] = ("UPDATE refresh_tokens SET revoked_at = $2::bigint "
                                "WHERE user_id = $1::bigint AND revoked_at IS NULL"),
    /* The inbox: the page's ids from an index walk alone, then only the page's rows and
     * visitors. One status: conversations_inbox (project_id, status, last_message_timestamp,
     * id) in order; several: conversations_newest (project_id, last_message_timestamp, id,
     * status) in order, the status tested on the index entry. */
    [PQ_CONV_PAGE_ONE] =
        (PQ_CONV_SELECT "WHERE c.id IN (SELECT id FROM conversations "
                        "WHERE project_id = $1::bigint AND status = $2::text "
                        "ORDER BY last_message_timestamp DESC, id DESC "
                        "LIMIT $3::bigint OFFSET $4::bigint)" PQ_CONV_NEWEST_FIRST),
    [PQ_CONV_PAGE_MASK] =
        (PQ_CONV_SELECT "WHERE c.id IN (SELECT id FROM conversations "
                        "WHERE project_id = $1::bigint "
                        "AND status = ANY ($2::text[]) "
                        "ORDER BY last_message_timestamp DESC, id DESC "
                        "LIMIT $3::bigint OFFSET $4::bigint)" PQ_CONV_NEWEST_FIRST),
    [PQ_CONV_COUNT] = ("SELECT count(*) FROM conversations WHERE project_id = $1::bigint "
                       "AND status = ANY ($2::text[])"),
    [PQ_CONV_VISITOR_UID] = ("SELECT v.uid FROM conversations AS c "
                             "JOIN visitors AS v ON v.id = c.visitor_id "
                             "WHERE c.id = $1::bigint AND c.project_id = $2::bigint"),
    [PQ_CONV_ON_REPLY] =
        ("UPDATE conversations SET last_message_snippet = left($2::text, " PQ_SNIPPET_CHARS
         "), last_message_timestamp = $3::bigint, "
         "updated_at = $3::bigint WHERE id = $1::bigint"),
    [PQ_CONV_UPDATE] = ("UPDATE conversations SET status = coalesce($3::text, status), "
                        "unread_count = CASE WHEN $4::boolean THEN 0 ELSE unread_count END, "
                        "updated_at = CASE WHEN $3::text IS NOT NULL OR $4::boolean "
                        "THEN $5::bigint ELSE updated_at END "
                        "WHERE id = $1::bigint AND project_id = $2::bigint"),
    [PQ_CONV_ASSIGN] =
        ("UPDATE conversations SET assignee_id = $3::bigint, "
         "updated_at = $4::bigint WHERE id = $1::bigint AND project_id = $2::bigint"),
    /* Its messages go with it (ON DELETE CASCADE, through messages_by_conversation). */
    [PQ_CONV_DELETE] = ("DELETE FROM conversations WHERE id = $1::bigint "
                        "AND project_id = $2::bigint"),
    [PQ_MESSAGE_PAGE] = ("SELECT " PQ_MESSAGE_COLUMNS " FROM messages "
                         "WHERE conversation_id = $1::bigint AND id < $2::bigint "
                         "ORDER BY id DESC LIMIT $3::bigint"),
    [PQ_MESSAGE_INSERT_AGENT] = ("INSERT INTO messages (conversation_id, project_id, visitor_id, "
                                 "content, sender_id, from_customer, user_id, status, "
                                 "created_at) VALUES ($1::bigint, $2::bigint, $3::bigint, "
                                 "$4::text, $5::text, FALSE, $6::bigint, 'sent', $7::bigint) "
                                 "RETURNING id"),
    [PQ_OUTBOX_FETCH] = ("SELECT id, topic, payload, created_at FROM outbox ORDER BY id "
                         "LIMIT $1::bigint"),
    [PQ_OUTBOX_DELETE] = "DELETE FROM outbox WHERE id = ANY ($1::bigint[])",
};

/* ---- connections ----------------------------------------------------------------------------- */

/* What a statement sent in the current round trip is for. */
typedef enum {
    SLOT_PREPARE,  /* the Parse of a statement used for the first time on this connection */
    SLOT_DEFERRED, /* transaction control whose answer only matters if it failed */
    SLOT_WANTED    /* a statement whose result the operation reads (c->res, in order) */
} pq_slot_kind_t;

typedef struct {
    uint8_t kind;  /* pq_slot_kind_t */
    uint16_t stmt; /* pq_stmt_id_t */
} pq_slot_t;

typedef struct {
    store_conn_t base; /* first: store.c sees a store_conn_t */
    PGconn *pg;        /* owned; NULL while disconnected */
    char *url;         /* owned copy of the URL (may hold a password: never logged) */
    store_conn_role_t role;
    uint32_t lock_timeout_ms;
    bool prepared[PQ__COUNT]; /* a Parse was sent on this connection (reset when it drops) */
    /* The round trip being built: statements sent (not yet synced), in order. */
    pq_slot_t *slots;
    size_t nslots, slots_cap;
    /* Results of the SLOT_WANTED statements of the last round trip, in order; owned, cleared at
     * the start of the next round trip. */
    PGresult **res;
    size_t nres, res_cap;
    size_t *scratch; /* message_ingest_batch's rounds (pq_rounds) */
    size_t scratch_cap;
    size_t *grp; /* one ingest statement's visitors and keys (pq_ingest_groups) */
    size_t grp_cap;
    bool *mok; /* per message of a run: its metadata may create a conversation */
    size_t mok_cap;
    int64_t *obids; /* the outbox ids of one ingest statement */
    size_t obids_cap;
    bool in_tx;        /* a BEGIN was queued and no COMMIT/ROLLBACK yet */
    bool tx_lost;      /* a deferred statement failed: the transaction can only be rolled back */
    bool migrating;    /* inside a migration transaction: waits have no client-side deadline */
    bool lost_pending; /* a result said the server is going away: drop after the round trip */
    /* Reconnection (monotonic ms): no attempt before retry_at; backoff_ms is the wait after
     * the next failed attempt. */
    uint64_t retry_at;
    uint32_t backoff_ms;
    char errbuf[256]; /* the last error, for errmsg() and logs */
} pq_conn_t;

static pq_conn_t *pq(store_conn_t *c) {
    return (pq_conn_t *)c;
}

static const char *pq_role_name(const pq_conn_t *c) {
    return c->role == STORE_CONN_WRITE ? "write" : "read";
}

/* Copies msg into c->errbuf on one line (new lines become spaces, trailing ones go), with
 * every occurrence of the URL's password replaced by "***" (libpq does not print it: this
 * makes sure). Passwords shorter than four bytes are not searched for (they would match
 * ordinary words). */
static void pq_set_error(pq_conn_t *c, const char *msg) {
    if (!msg || !msg[0])
        msg = "unknown error";
    /* postgres://user:password@host/...: the password is between the first ':' after "//"
     * and the last '@' before the path. */
    const char *pw = NULL;
    size_t plen = 0;
    const char *auth = strstr(c->url, "://");
    if (auth) {
        auth += 3;
        const char *end = auth + strcspn(auth, "/?");
        const char *at = NULL;
        for (const char *p = auth; p < end; p++)
            if (*p == '@')
                at = p;
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon && at - colon - 1 >= 4) {
            pw = colon + 1;
            plen = (size_t)(at - colon - 1);
        }
    }
    size_t o = 0;
    for (const char *p = msg; *p && o + 1 < sizeof c->errbuf;) {
        if (pw && strncmp(p, pw, plen) == 0) {
            for (const char *r = "***"; *r && o + 1 < sizeof c->errbuf; r++)
                c->errbuf[o++] = *r;
            p += plen;
            continue;
        }
        char ch = *p == '\n' || *p == '\t' ? ' ' : *p; /* libpq indents with "\n\t" */
        if (ch != ' ' || (o > 0 && c->errbuf[o - 1] != ' '))
            c->errbuf[o++] = ch;
        p++;
    }
    while (o > 0 && c->errbuf[o - 1] == ' ')
        o--;
    c->errbuf[o] = '\0';
}

/* libpq's notices (a WARNING about a ROLLBACK without a transaction, ...) are not errors: they
 * are dropped instead of going to stderr. */
static void pq_notice(void *arg, const char *message) {
    (void)arg;
    (void)message;
}

static void pq_results_clear(pq_conn_t *c) {
    for (size_t i = 0; i < c->nres; i++)
        PQclear(c->res[i]);
    c->nres = 0;
}

/* Drops the connection after an error of the connection itself: the next begin reconnects
 * (at once: the backoff starts with the first failed attempt). */
static void pq_lose(pq_conn_t *c, const char *why) {
    if (c->pg) {
        char msg[300];
        pl_log_warn("store_pg_connection_lost", "role=%s why=%s msg=%s", pq_role_name(c), why,
                    pl_log_quote(msg, sizeof msg, c->errbuf, strlen(c->errbuf)));
        PQfinish(c->pg);
        c->pg = NULL;
    }
    pq_results_clear(c);
    c->nslots = 0;
    memset(c->prepared, 0, sizeof c->prepared);
    c->in_tx = false;
    c->tx_lost = false;
    c->migrating = false;
    c->lost_pending = false;
    c->retry_at = pl_mono_ms();
    c->backoff_ms = PQ_BACKOFF_MIN_MS;
}

/* Waits until the socket is readable (or writable too, with want_write). 0, or -1 on a timeout
 * or a poll error (the connection is then useless). */
static int pq_wait(pq_conn_t *c, bool want_write) {
    struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN | (want_write ? POLLOUT : 0)};
    if (p.fd < 0)
        return -1;
    int timeout = c->migrating ? -1 : PQ_IO_TIMEOUT_MS;
    for (;;) {
        int n = poll(&p, 1, timeout);
        if (n > 0)
            return 0;
        if (n == 0) {
            pq_set_error(c, "no answer from the server in time");
            return -1;
        }
        if (errno != EINTR) {
            pq_set_error(c, strerror(errno));
            return -1;
        }
    }
}

/* Sends libpq's output buffer, reading input meanwhile (the server must never block on writing
 * results while we block on writing statements). 0 or -1. */
static int pq_flush(pq_conn_t *c) {
    for (;;) {
        int r = PQflush(c->pg);
        if (r == 0)
            return 0;
        if (r < 0 || pq_wait(c, true) != 0)
            return -1;
        if (!PQconsumeInput(c->pg))
            return -1;
    }
}

/* The next result of the pipeline, waiting for it; NULL at the end of a statement's results.
 * *fail is set (and NULL returned) when the connection broke. */
static PGresult *pq_next(pq_conn_t *c, bool *fail) {
    *fail = false;
    while (PQisBusy(c->pg)) {
        if (pq_wait(c, false) != 0 || !PQconsumeInput(c->pg)) {
            *fail = true;
            return NULL;
        }
    }
    PGresult *r = PQgetResult(c->pg);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        PQclear(r);
        *fail = true;
        return NULL;
    }
    return r;
}

/* Maps a failed result to a store status (and records its message). Errors of the environment
 * are logged here, once. */
static int pq_error_status(pq_conn_t *c, const PGresult *r) {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    pq_set_error(c, msg ? msg : PQresultErrorMessage(r));
    if (!state)
        state = "";
    if (strcmp(state, "23505") == 0)
        return STORE_ECONFLICT;
    if (strcmp(state, "23503") == 0)
        return STORE_ENOTFOUND;
    if (strcmp(state, "23514") == 0 || strcmp(state, "23502") == 0 || strncmp(state, "22", 2) == 0)
        return PL_EINVAL;
    if (strcmp(state, "54000") == 0)
        return PL_ETOOBIG;
    if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
        strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
        c->lost_pending = true;
    char q[300];
    pl_log_warn("store_pg_error", "role=%s sqlstate=%s msg=%s", pq_role_name(c),
                state[0] ? state : "none", pl_log_quote(q, sizeof q, c->errbuf, strlen(c->errbuf)));
    return PL_EUNAVAIL;
}

/* 0 for a result that succeeded, else its status. */
static int pq_result_status(pq_conn_t *c, const PGresult *r) {
    switch (PQresultStatus(r)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        return 0;
    case PGRES_PIPELINE_ABORTED: /* an earlier statement of the round trip failed */
        return PL_EUNAVAIL;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR:
        return pq_error_status(c, r);
    default:
        pq_set_error(c, "unexpected result from the server");
        return PL_EUNAVAIL;
    }
}

/* Grows an array of elem-sized entries to hold at least need (fixed-size bookkeeping of one
 * connection: aborts when out of memory, like pl_xmalloc). */
static void pq_grow(void **v, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *nv = realloc(*v, ncap * elem);
    if (!nv) {
        pl_log_error("store_pg_oom", "entries=%zu", ncap);
        abort();
    }
    *v = nv;
    *cap = ncap;
}

static void pq_slot_push(pq_conn_t *c, pq_slot_kind_t kind, pq_stmt_id_t id) {
    pq_grow((void **)&c->slots, &c->slots_cap, c->nslots + 1, sizeof *c->slots);
    c->slots[c->nslots++] = (pq_slot_t){.kind = (uint8_t)kind, .stmt = (uint16_t)id};
}

/* Parameters of one statement, all in text format (NULL = SQL NULL). */
typedef struct {
    const char *v[PQ_MAX_PARAMS];
    char num[PQ_MAX_PARAMS][24]; /* decimal integers */
    int n;
} pq_params_t;

static void par_i64(pq_params_t *p, int64_t x) {
    snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, x);
    p->v[p->n] = p->num[p->n];
    p->n++;
}

/* Text, borrowed until the statement is queued; NULL for SQL NULL. */
static void par_text(pq_params_t *p, const char *s) {
    p->v[p->n++] = s;
}

static void par_bool(pq_params_t *p, bool b) {
    p->v[p->n++] = b ? "t" : "f";
}

/* Queues statement id (its Parse first when this connection has not prepared it yet). The
 * statement is sent by the next round trip. 0, or PL_EUNAVAIL when the connection is gone or
 * refuses (it is dropped then). */
static int pq_queue(pq_conn_t *c, pq_slot_kind_t kind, pq_stmt_id_t id, const pq_params_t *p) {
    if (!c->pg)
        return PL_EUNAVAIL;
    if (c->nslots == 0) {
        pq_results_clear(c); /* the results of the last round trip were read by now */
        /* A read that failed aborted the read snapshot: the rest of the batch gets a fresh
         * one (each read fails alone, as on SQLite). */
        if (c->role == STORE_CONN_READ && c->in_tx &&
            PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
            c->in_tx = false;
            if (pq_queue(c, SLOT_DEFERRED, PQ_ROLLBACK, NULL) != 0 ||
                pq_queue(c, SLOT_DEFERRED, PQ_BEGIN_READ, NULL) != 0)
                return PL_EUNAVAIL;
            c->in_tx = true;
        }
        if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF && !PQenterPipelineMode(c->pg))
            goto out_lost;
    }
    char name[16];
    snprintf(name, sizeof name, "p%d", (int)id);
    if (!c->prepared[id]) {
        if (!PQsendPrepare(c->pg, name, g_sql[id], 0, NULL))
            goto out_lost;
        pq_slot_push(c, SLOT_PREPARE, id);
        c->prepared[id] = true; /* undone if the Parse fails */
    }
    if (!PQsendQueryPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0))
        goto out_lost;
    pq_slot_push(c, kind, id);
    return 0;

out_lost:
    pq_set_error(c, PQerrorMessage(c->pg));
    pq_lose(c, "send");
    return PL_EUNAVAIL;
}

/* Sends the queued statements with a sync point, and reads every result up to it: wanted ones
 * go to c->res in order. Returns 0, or the first error: a wanted statement's own status, or
 * PL_EUNAVAIL for a failed Parse or deferred statement (the transaction is then lost) or a
 * broken connection (dropped). */
static int pq_roundtrip(pq_conn_t *c) {
    pq_results_clear(c);
    if (!c->pg)
        return PL_EUNAVAIL;
    if (c->nslots == 0)
        return 0;
    int rc = 0;
    bool fail = false;
    if (!PQpipelineSync(c->pg) || pq_flush(c) != 0)
        goto out_lost;
    pq_grow((void **)&c->res, &c->res_cap, c->nslots, sizeof *c->res);
    for (size_t i = 0; i < c->nslots; i++) {
        const pq_slot_t *sl = &c->slots[i];
        bool first = true;
        PGresult *r;
        while ((r = pq_next(c, &fail))) {
            int e = pq_result_status(c, r);
            if (sl->kind == SLOT_WANTED && first)
                c->res[c->nres++] = r;
            else
                PQclear(r);
            first = false;
            if (e == 0)
                continue;
            if (sl->kind == SLOT_PREPARE)
                c->prepared[sl->stmt] = false; /* failed, or skipped after an error */
            /* Transaction control that failed or was skipped: the savepoints are not what
             * store.c believes any more. (A failed Parse or statement only aborts the current
             * savepoint, which store.c rolls back.) */
            if (sl->kind == SLOT_DEFERRED && c->in_tx)
                c->tx_lost = true;
            if (rc == 0)
                rc = sl->kind == SLOT_WANTED ? e : PL_EUNAVAIL;
        }
        if (fail)
            goto out_lost;
    }
    PGresult *r = pq_next(c, &fail);
    if (fail || !r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
        PQclear(r);
        if (!fail)
            pq_set_error(c, "the pipeline lost its synchronisation");
        goto out_lost;
    }
    PQclear(r);
    c->nslots = 0;
    if (!PQexitPipelineMode(c->pg))
        goto out_lost;
    if (c->lost_pending) {
        pq_lose(c, "server");
        return PL_EUNAVAIL;
    }
    return rc;

out_lost:
    if (PQstatus(c->pg) == CONNECTION_BAD || !c->errbuf[0])
        pq_set_error(c, PQerrorMessage(c->pg));
    pq_lose(c, "io");
    return PL_EUNAVAIL;
}

/* After a failure (out of memory) between queueing statements and their round trip: runs what
 * was queued so that nothing stale is sent with a later round trip, and forgets the results
 * (the caller fails its request, whose savepoint store.c rolls back). */
static void pq_discard(pq_conn_t *c) {
    if (c->nslots > 0)
        (void)pq_roundtrip(c);
    pq_results_clear(c);
}

/* Ends an operation's queueing: the round trip when everything was queued (rc 0), else
 * pq_discard and rc. */
static int pq_finish(pq_conn_t *c, int rc) {
    if (rc != 0) {
        pq_discard(c);
        return rc;
    }
    return pq_roundtrip(c);
}

/* Queues one wanted statement, runs the round trip, and gives its result (owned by c until
 * the next round trip). */
static int pq_exec(pq_conn_t *c, pq_stmt_id_t id, const pq_params_t *p, PGresult **out) {
    *out = NULL;
    int rc = pq_queue(c, SLOT_WANTED, id, p);
    rc = pq_finish(c, rc);
    if (rc == 0)
        *out = c->res[0];
    return rc;
}

/* The number of rows a command changed (its command tag). */
static int64_t pq_changes(const PGresult *r) {
    const char *t = PQcmdTuples((PGresult *)r);
    return t && t[0] ? strtoll(t, NULL, 10) : 0;
}

/* Opens the connection and sets the session up. 0, or PL_EUNAVAIL with c->errbuf set. */
static int pq_connect(pq_conn_t *c) {
    /* Our defaults first: the URL's own parameters (processed after them) win. */
    static const char *const kw[] = {"connect_timeout",  "keepalives",
                                     "keepalives_idle",  "keepalives_interval",
                                     "keepalives_count", "tcp_user_timeout",
                                     "application_name", "client_encoding",
                                     "dbname",           NULL};
    const char *val[] = {
        PQ_CONNECT_TIMEOUT_S, "1", "10", "5", "3", "20000", "parley", "UTF8", c->url, NULL};
    PGconn *pg = PQconnectdbParams(kw, val, 1);
    if (!pg) {
        pq_set_error(c, "out of memory");
        return PL_EUNAVAIL;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        pq_set_error(c, PQerrorMessage(pg));
        PQfinish(pg);
        return PL_EUNAVAIL;
    }
    PQsetNoticeProcessor(pg, pq_notice, NULL);
    char lock[16], stmt[16];
    snprintf(lock, sizeof lock, "%u", c->lock_timeout_ms);
    snprintf(stmt, sizeof stmt, "%u", PQ_STATEMENT_TIMEOUT_MS);
    /* The write connection's statements are all driven by keys: plan them once per connection
     * (a custom plan of the ingest statement costs more than running it; left to itself the
     * server tries several before it settles on the generic one). */
    const char *plans = c->role == STORE_CONN_WRITE ? "force_generic_plan" : "auto";
    const char *pv[] = {lock, stmt, plans};
    PGresult *r = PQexecParams(pg,
                               "SELECT set_config('lock_timeout', $1, false), "
                               "set_config('statement_timeout', $2, false), "
                               "set_config('plan_cache_mode', $3, false)",
                               3, NULL, pv, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        pq_set_error(c, PQresultErrorMessage(r));
    PQclear(r);
    if (ok && PQsetnonblocking(pg, 1) != 0) {
        pq_set_error(c, PQerrorMessage(pg));
        ok = false;
    }
    if (!ok) {
        PQfinish(pg);
        return PL_EUNAVAIL;
    }
    c->pg = pg;
    memset(c->prepared, 0, sizeof c->prepared);
    c->nslots = 0;
    c->in_tx = c->tx_lost = c->migrating = c->lost_pending = false;
    c->backoff_ms = PQ_BACKOFF_MIN_MS;
    c->errbuf[0] = '\0';
    return 0;
}

/* Makes sure the connection is up before a transaction: drops one the server closed while it
 * was idle (a restart, a terminated backend) and reconnects when the backoff allows. 0 or
 * PL_EUNAVAIL (at once while the backoff runs). */
static int pq_ensure(pq_conn_t *c) {
    if (c->pg) {
        struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
        bool gone = PQstatus(c->pg) != CONNECTION_OK || p.fd < 0;
        /* Something arrived while idle: a notice, or the server's goodbye (an error, which
         * libpq takes for a notice, then the end of the stream, seen by the next read). */
        for (int i = 0; i < 4 && !gone && poll(&p, 1, 0) > 0; i++)
            gone = !PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK;
        if (!gone)
            return 0;
        pq_set_error(c, PQerrorMessage(c->pg));
        pq_lose(c, "idle");
    }
    uint64_t now = pl_mono_ms();
    if (now < c->retry_at)
        return PL_EUNAVAIL;
    if (pq_connect(c) != 0) {
        char msg[300];
        pl_log_warn("store_pg_connect_failed", "role=%s retry_in_ms=%u msg=%s", pq_role_name(c),
                    c->backoff_ms, pl_log_quote(msg, sizeof msg, c->errbuf, strlen(c->errbuf)));
        c->retry_at = now + c->backoff_ms;
        c->backoff_ms =
            c->backoff_ms * 2 > PQ_BACKOFF_MAX_MS ? PQ_BACKOFF_MAX_MS : c->backoff_ms * 2;
        return PL_EUNAVAIL;
    }
    pl_log_info("store_pg_connected", "role=%s", pq_role_name(c));
    return 0;
}

static void pq_conn_close(store_conn_t *base) {
    if (!base)
        return;
    pq_conn_t *c = pq(base);
    pq_results_clear(c);
    if (c->pg)
        PQfinish(c->pg);
    free(c->res);
    free(c->slots);
    free(c->scratch);
    free(c->grp);
    free(c->mok);
    free(c->obids);
    free(c->url);
    free(c);
}

static store_conn_t *pq_conn_open(const char *url, const store_options_t *opts,
                                  store_conn_role_t role, char *err, size_t errlen) {
    pq_conn_t *c = calloc(1, sizeof *c);
    if (!c || !(c->url = strdup(url))) {
        free(c);
        store__errf(err, errlen, "out of memory");
        return NULL;
    }
    c->base.ops = &store_pg_ops;
    c->role = role;
    c->lock_timeout_ms =
        opts && opts->busy_timeout_ms ? opts->busy_timeout_ms : STORE_DEFAULT_BUSY_TIMEOUT_MS;
    if (pq_connect(c) != 0) {
        store__errf(err, errlen, "cannot connect to PostgreSQL: %s", c->errbuf);
        pq_conn_close(&c->base);
        return NULL;
    }
    return &c->base;
}

static const char *pq_errmsg(store_conn_t *c) {
    return pq(c)->errbuf[0] ? pq(c)->errbuf : "no error";
}

/* ---- transactions ---------------------------------------------------------------------------- */

/* True when statements may be queued in the current transaction. */
static bool pq_usable(const pq_conn_t *c) {
    return c->pg && c->in_tx && !c->tx_lost;
}

static int pq_begin(store_conn_t *base, bool write) {
    pq_conn_t *c = pq(base);
    int rc = pq_ensure(c);
    if (rc != 0)
        return rc;
    c->tx_lost = false;
    rc = pq_queue(c, SLOT_DEFERRED, write ? PQ_BEGIN_WRITE : PQ_BEGIN_READ, NULL);
    c->in_tx = rc == 0;
    return rc;
}

static int pq_commit(store_conn_t *base) {
    pq_conn_t *c = pq(base);
    if (!pq_usable(c))
        return PL_EUNAVAIL;
    PGresult *r;
    int rc = pq_exec(c, PQ_COMMIT, NULL, &r);
    /* A failed transaction "commits" as ROLLBACK: only COMMIT is a commit. */
    if (rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        pq_set_error(c, "the transaction was rolled back");
        rc = PL_EUNAVAIL;
    }
    if (rc == 0) {
        c->in_tx = false;
        c->migrating = false;
    }
    return rc;
}

static void pq_rollback(store_conn_t *base) {
    pq_conn_t *c = pq(base);
    if (c->pg && (c->in_tx || c->nslots > 0 || PQtransactionStatus(c->pg) != PQTRANS_IDLE)) {
        PGresult *r;
        (void)pq_exec(c, PQ_ROLLBACK, NULL, &r); /* a broken connection is dropped */
    }
    c->in_tx = false;
    c->tx_lost = false;
    c->migrating = false;
}

static int pq_savepoint(store_conn_t *base) {
    pq_conn_t *c = pq(base);
    return pq_usable(c) ? pq_queue(c, SLOT_DEFERRED, PQ_SAVEPOINT, NULL) : PL_EUNAVAIL;
}

static int pq_release(store_conn_t *base) {
    pq_conn_t *c = pq(base);
    return pq_usable(c) ? pq_queue(c, SLOT_DEFERRED, PQ_RELEASE, NULL) : PL_EUNAVAIL;
}

static int pq_rollback_to(store_conn_t *base) {
    pq_conn_t *c = pq(base);
    if (!pq_usable(c))
        return PL_EUNAVAIL;
    int rc = pq_queue(c, SLOT_DEFERRED, PQ_ROLLBACK_TO, NULL);
    return rc == 0 ? pq_queue(c, SLOT_DEFERRED, PQ_RELEASE, NULL) : rc;
}

/* ---- migrations ------------------------------------------------------------------------------ */

static int pq_exec_script(store_conn_t *base, const char *sql, char *err, size_t errlen) {
    pq_conn_t *c = pq(base);
    int rc = pq_usable(c) ? pq_roundtrip(c) : PL_EUNAVAIL; /* the queued BEGIN, lock, ... */
    if (rc != 0) {
        store__errf(err, errlen, "%s", pq_errmsg(base));
        return rc;
    }
    /* Several statements: the simple query protocol, outside pipeline mode. */
    if (!PQsendQuery(c->pg, sql) || pq_flush(c) != 0)
        goto out_lost;
    PGresult *r;
    bool fail;
    while ((r = pq_next(c, &fail))) {
        int e = pq_result_status(c, r);
        PQclear(r);
        if (e != 0 && rc == 0) {
            rc = e;
            store__errf(err, errlen, "%s", c->errbuf);
        }
    }
    if (fail)
        goto out_lost;
    if (c->lost_pending) {
        pq_lose(c, "server");
        return PL_EUNAVAIL;
    }
    return rc;

out_lost:
    pq_set_error(c, PQerrorMessage(c->pg));
    store__errf(err, errlen, "%s", c->errbuf);
    pq_lose(c, "io");
    return PL_EUNAVAIL;
}

static int pq_migration_lock(store_conn_t *base) {
    pq_conn_t *c = pq(base);
    if (!pq_usable(c))
        return PL_EUNAVAIL;
    c->migrating = true;
    PGresult *r;
    int rc = pq_queue(c, SLOT_DEFERRED, PQ_MIGRATION_SETTINGS, NULL);
    return rc == 0 ? pq_exec(c, PQ_MIGRATION_LOCK, NULL, &r) : rc;
}

/* ---- reading results ------------------------------------------------------------------------- */

/* Column col of row as an integer; NULL reads as 0. */
static int64_t col_i64(const PGresult *r, int row, int col) {
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static bool col_bool(const PGresult *r, int row, int col) {
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static bool col_null(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) != 0;
}

/* Column col as a string borrowed from the result (NULL for SQL NULL). */
static const char *col_str(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* Copies text column col into *out: a NULL value gives NULL when nullable, PL_EUNAVAIL when not
 * (the schema forbids it). PL_ENOMEM when the copy fails. */
static int col_text(const PGresult *r, int row, int col, bool nullable, char **out) {
    *out = NULL;
    if (PQgetisnull(r, row, col))
        return nullable ? 0 : PL_EUNAVAIL;
    *out = strdup(PQgetvalue(r, row, col));
    return *out ? 0 : PL_ENOMEM;
}

/* Appends a copy of text column col of every row to a new string array. */
static int col_text_all(const PGresult *r, int col, char ***v, size_t *n) {
    *v = NULL;
    *n = 0;
    int rows = PQntuples(r);
    if (rows == 0)
        return 0;
    *v = calloc((size_t)rows, sizeof(char *));
    if (!*v)
        return PL_ENOMEM;
    for (int i = 0; i < rows; i++) {
        int rc = col_text(r, i, col, false, &(*v)[*n]);
        if (rc != 0)
            return rc; /* the caller frees what was copied */
        ++*n;
    }
    return 0;
}

/* Parses the bigint[] column col ("{1,2,3}"; NULL is the empty list) into v[0..max), with the
 * count in *n. PL_EUNAVAIL when the text is not such a list or holds more than max ids. */
static int col_i64_array(const PGresult *r, int row, int col, int64_t *v, size_t max, size_t *n) {
    *n = 0;
    if (PQgetisnull(r, row, col))
        return 0;
    const char *p = PQgetvalue(r, row, col);
    if (*p++ != '{')
        return PL_EUNAVAIL;
    if (*p == '}')
        return p[1] == '\0' ? 0 : PL_EUNAVAIL;
    for (;;) {
        if (*n == max || *p < '0' || *p > '9')
            return PL_EUNAVAIL; /* ids are positive: no sign, no space */
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (errno != 0)
            return PL_EUNAVAIL;
        v[(*n)++] = (int64_t)x;
        p = end;
        if (*p == '}')
            return p[1] == '\0' ? 0 : PL_EUNAVAIL;
        if (*p++ != ',')
            return PL_EUNAVAIL;
    }
}

/* A PostgreSQL array literal being built as one text parameter: {"a","b",NULL,...} with every
 * string element quoted (" and \ escaped: nothing else is special inside quotes). Errors are
 * sticky: arr_end reports them. */
typedef struct {
    pl_buf_t b;
    size_t n; /* elements so far */
    int rc;   /* 0 or PL_ENOMEM */
} pq_arr_t;

static void arr_init(pq_arr_t *a) {
    pl_buf_init(&a->b, 0);
    a->n = 0;
    a->rc = pl_buf_append(&a->b, "{", 1) != 0 ? PL_ENOMEM : 0;
}

static void arr_put(pq_arr_t *a, const char *p, size_t len) {
    if (a->rc == 0 && pl_buf_append(&a->b, p, len) != 0)
        a->rc = PL_ENOMEM;
}

static void arr_sep(pq_arr_t *a) {
    if (a->n++ > 0)
        arr_put(a, ",", 1);
}

/* A text element; NULL is SQL NULL. */
static void arr_str(pq_arr_t *a, const char *s) {
    arr_sep(a);
    if (!s) {
        arr_put(a, "NULL", 4);
        return;
    }
    arr_put(a, "\"", 1);
    for (const char *p = s; *p;) {
        size_t run = strcspn(p, "\"\\");
        arr_put(a, p, run);
        p += run;
        if (*p) {
            char esc[2] = {'\\', *p++};
            arr_put(a, esc, 2);
        }
    }
    arr_put(a, "\"", 1);
}

static void arr_i64(pq_arr_t *a, int64_t v) {
    char num[24];
    int len = snprintf(num, sizeof num, "%" PRId64, v);
    arr_sep(a);
    arr_put(a, num, (size_t)len);
}

static void arr_bool(pq_arr_t *a, bool v) {
    arr_sep(a);
    arr_put(a, v ? "t" : "f", 1);
}

/* Closes the literal: the NUL-terminated text, or NULL when out of memory. */
static const char *arr_end(pq_arr_t *a) {
    arr_put(a, "}", 2); /* with the NUL */
    return a->rc == 0 ? a->b.data : NULL;
}

static void arr_dispose(pq_arr_t *a) {
    pl_buf_dispose(&a->b);
}

/* True when text is a JSON object (the rule SQLite's json_valid + json_type apply there). */
static bool json_text_is_object(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    bool ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

/* ---- operations: projects -------------------------------------------------------------------- */

static int pq_schema_version(store_conn_t *base, int *version) {
    pq_conn_t *c = pq(base);
    if (!pq_usable(c))
        return PL_EUNAVAIL;
    PGresult *r;
    int rc = pq_exec(c, PQ_SCHEMA_VERSION, NULL, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1)
        return PL_EUNAVAIL;
    int64_t v = col_i64(r, 0, 0);
    *version = v > INT_MAX ? INT_MAX : v < 0 ? 0 : (int)v;
    return 0;
}

static int pq_schema_stamp(store_conn_t *base, int version, int64_t at_ms) {
    pq_conn_t *c = pq(base);
    if (!pq_usable(c))
        return PL_EUNAVAIL;
    pq_params_t p = {0};
    par_i64(&p, version);
    par_i64(&p, at_ms);
    PGresult *r;
    return pq_exec(c, PQ_SCHEMA_STAMP, &p, &r);
}

static int pq_ping(store_conn_t *c) {
    int version = 0;
    return pq_schema_version(c, &version);
}

/* Fills p from a row of PQ_PROJECT_COLUMNS (domains are read separately). */
static int pq_project_from_row(const PGresult *r, int row, store_project_t *p) {
    memset(p, 0, sizeof *p);
    p->id = col_i64(r, row, 0);
    int rc = col_text(r, row, 1, false, &p->name);
    if (rc == 0)
        rc = col_text(r, row, 2, false, &p->widget_settings_json);
    p->identity_verification = col_bool(r, row, 3);
    if (rc == 0)
        rc = col_text(r, row, 4, true, &p->identity_secret);
    p->created_at = col_i64(r, row, 5);
    p->updated_at = col_i64(r, row, 6);
    return rc;
}

/* Queues the two statements that read project id with its domains (wanted results k, k+1). */
static int pq_project_queue(pq_conn_t *c, int64_t id) {
    pq_params_t p = {0};
    par_i64(&p, id);
    int rc = pq_queue(c, SLOT_WANTED, PQ_PROJECT_GET, &p);
    return rc == 0 ? pq_queue(c, SLOT_WANTED, PQ_DOMAINS_OF, &p) : rc;
}

/* Builds the project from wanted results k (the row) and k + 1 (its domains). */
static int pq_project_parse(pq_conn_t *c, size_t k, store_project_t **out) {
    *out = NULL;
    const PGresult *pr = c->res[k], *dr = c->res[k + 1];
    if (PQntuples(pr) == 0)
        return STORE_ENOTFOUND;
    store_project_t *p = malloc(sizeof *p);
    if (!p)
        return PL_ENOMEM;
    int rc = pq_project_from_row(pr, 0, p);
    if (rc == 0)
        rc = col_text_all(dr, 0, &p->domains, &p->ndomains);
    if (rc != 0) {
        store_project_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Reads one project with its domains into a new struct (one round trip). */
static int pq_project_read(pq_conn_t *c, int64_t id, store_project_t **out) {
    *out = NULL;
    int rc = pq_project_queue(c, id);
    rc = pq_finish(c, rc);
    return rc == 0 ? pq_project_parse(c, 0, out) : rc;
}

static int pq_project_get(store_conn_t *c, int64_t id, store_project_t **out) {
    return pq_project_read(pq(c), id, out);
}

/* Queues the insertion of the domains v[0..n) not there yet, at the end of the project's order
 * (nothing for n = 0). */
static int pq_domains_queue(pq_conn_t *c, pq_stmt_id_t id, int64_t project_id, const char *const *v,
                            size_t n) {
    if (n == 0)
        return 0;
    pq_arr_t arr;
    arr_init(&arr);
    for (size_t i = 0; i < n; i++)
        arr_str(&arr, v[i]);
    const char *lit = arr_end(&arr);
    int rc = PL_ENOMEM;
    if (lit) {
        pq_params_t p = {0};
        par_i64(&p, project_id);
        par_text(&p, lit);
        rc = pq_queue(c, SLOT_WANTED, id, &p);
    }
    arr_dispose(&arr);
    return rc;
}

static int pq_project_create(store_conn_t *base, const char *name, const char *const *domains,
                             size_t ndomains, store_project_t **out) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    pq_params_t p = {0};
    par_text(&p, name);
    par_i64(&p, pl_wall_ms());
    PGresult *r;
    int rc = pq_exec(c, PQ_PROJECT_INSERT, &p, &r); /* an empty name fails the CHECK */
    if (rc != 0)
        return rc;
    int64_t id = col_i64(r, 0, 0);
    rc = pq_domains_queue(c, PQ_DOMAINS_ADD, id, domains, ndomains);
    size_t k = ndomains > 0 ? 1 : 0;
    if (rc == 0)
        rc = pq_project_queue(c, id);
    rc = pq_finish(c, rc); /* an empty domain fails the CHECK: PL_EINVAL */
    return rc == 0 ? pq_project_parse(c, k, out) : rc;
}

static int pq_project_domains_update(store_conn_t *base, int64_t id, const char *const *add,
                                     size_t nadd, const char *const *remove, size_t nremove,
                                     store_project_t **out) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    /* All in one round trip: the touch says whether the project exists (the other statements
     * change nothing then), removals, additions, then the project as it is now. */
    pq_params_t p = {0};
    par_i64(&p, id);
    par_i64(&p, pl_wall_ms());
    int rc = pq_queue(c, SLOT_WANTED, PQ_PROJECT_TOUCH, &p);
    if (rc == 0)
        rc = pq_domains_queue(c, PQ_DOMAINS_DELETE, id, remove, nremove);
    if (rc == 0)
        rc = pq_domains_queue(c, PQ_DOMAINS_ADD, id, add, nadd);
    size_t k = 1 + (nremove > 0) + (nadd > 0);
    if (rc == 0)
        rc = pq_project_queue(c, id);
    rc = pq_finish(c, rc);
    if (c->nres > 0 && pq_result_status(c, c->res[0]) == 0 && pq_changes(c->res[0]) == 0)
        return rc == 0 || rc == STORE_ENOTFOUND || rc == PL_EINVAL ? STORE_ENOTFOUND : rc;
    return rc == 0 ? pq_project_parse(c, k, out) : rc;
}

static void pq_projects_free(store_project_t *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        store__project_dispose(&v[i]);
    free(v);
}

/* Builds a project list from wanted results 0 (projects in id order; with user_id > 0 the
 * user's role in column 7) and 1 (project_id, domain in project and insertion order), merged
 * by walking both. */
static int pq_projects_parse(pq_conn_t *c, bool with_role, store_project_t **out, size_t *n) {
    *out = NULL;
    *n = 0;
    const PGresult *pr = c->res[0], *dr = c->res[1];
    int rows = PQntuples(pr);
    if (rows == 0)
        return 0;
    store_project_t *v = calloc((size_t)rows, sizeof *v);
    if (!v)
        return PL_ENOMEM;
    size_t len = 0;
    int rc = 0;
    for (int i = 0; i < rows && rc == 0; i++) {
        rc = pq_project_from_row(pr, i, &v[len]);
        len++; /* even when incomplete, so that its copies are freed */
        if (rc == 0 && with_role)
            rc = col_text(pr, i, 7, false, &v[len - 1].role);
    }
    size_t i = 0, dcap = 0;
    for (int row = 0, drows = PQntuples(dr); rc == 0 && row < drows; row++) {
        int64_t pid = col_i64(dr, row, 0);
        while (i < len && v[i].id < pid) {
            i++;
            dcap = 0;
        }
        if (i == len || v[i].id != pid)
            continue;
        store_project_t *pj = &v[i];
        if (pj->ndomains == dcap) {
            size_t ncap = dcap ? dcap * 2 : 4;
            char **nd = realloc(pj->domains, ncap * sizeof *nd);
            if (!nd) {
                rc = PL_ENOMEM;
                break;
            }
            pj->domains = nd;
            dcap = ncap;
        }
        rc = col_text(dr, row, 1, false, &pj->domains[pj->ndomains]);
        if (rc == 0)
            pj->ndomains++;
    }
    if (rc != 0) {
        pq_projects_free(v, len);
        return rc;
    }
    *out = v;
    *n = len;
    return 0;
}

static int pq_project_list(store_conn_t *base, store_project_t **out, size_t *n) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    *n = 0;
    int rc = pq_queue(c, SLOT_WANTED, PQ_PROJECT_LIST, NULL);
    if (rc == 0)
        rc = pq_queue(c, SLOT_WANTED, PQ_DOMAINS_ALL, NULL);
    rc = pq_finish(c, rc);
    return rc == 0 ? pq_projects_parse(c, false, out, n) : rc;
}

static int pq_project_count(store_conn_t *base, int64_t *count) {
    PGresult *r;
    int rc = pq_exec(pq(base), PQ_PROJECT_COUNT, NULL, &r);
    if (rc == 0 && PQntuples(r) != 1)
        rc = PL_EUNAVAIL;
    if (rc == 0)
        *count = col_i64(r, 0, 0);
    return rc;
}

/* ---- operations: the widget connection flow -------------------------------------------------- */

/* Fills v from the PQ_VISITOR_COLUMNS of a row, starting at column k. On an error v holds what
 * was copied (dispose it). */
static int pq_visitor_from_row(const PGresult *r, int row, int k, store_visitor_t *v) {
    memset(v, 0, sizeof *v);
    v->id = col_i64(r, row, k + 0);
    v->project_id = col_i64(r, row, k + 1);
    v->last_seen_at = col_i64(r, row, k + 6);
    v->created_at = col_i64(r, row, k + 7);
    int rc = col_text(r, row, k + 2, false, &v->uid);
    if (rc == 0)
        rc = col_text(r, row, k + 3, true, &v->name);
    if (rc == 0)
        rc = col_text(r, row, k + 4, true, &v->email);
    if (rc == 0)
        rc = col_text(r, row, k + 5, true, &v->current_url);
    return rc;
}

/* A new visitor struct from a row (PQ_VISITOR_COLUMNS from column 0); no row: STORE_ENOTFOUND. */
static int pq_visitor_read(const PGresult *r, store_visitor_t **out) {
    *out = NULL;
    if (PQntuples(r) == 0)
        return STORE_ENOTFOUND;
    store_visitor_t *v = malloc(sizeof *v);
    if (!v)
        return PL_ENOMEM;
    int rc = pq_visitor_from_row(r, 0, 0, v);
    if (rc != 0) {
        store_visitor_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

/* Fills cv from a row of PQ_CONV_SELECT (the conversation, then its visitor). On an error cv
 * holds what was copied (dispose it). */
static int pq_conversation_from_row(const PGresult *r, int row, store_conversation_t *cv) {
    memset(cv, 0, sizeof *cv);
    cv->id = col_i64(r, row, 0);
    cv->project_id = col_i64(r, row, 1);
    cv->visitor_id = col_i64(r, row, 2);
    cv->assignee_id = col_i64(r, row, 3);
    cv->last_message_timestamp = col_i64(r, row, 6);
    cv->unread_count = col_i64(r, row, 7);
    cv->created_at = col_i64(r, row, 10);
    cv->updated_at = col_i64(r, row, 11);
    int rc = col_text(r, row, 4, false, &cv->status);
    if (rc == 0)
        rc = col_text(r, row, 5, true, &cv->last_message_snippet);
    if (rc == 0)
        rc = col_text(r, row, 8, true, &cv->metadata_json);
    if (rc == 0)
        rc = col_text(r, row, 9, true, &cv->url_history_json);
    if (rc == 0)
        rc = pq_visitor_from_row(r, row, 12, &cv->visitor);
    return rc;
}

/* A new conversation struct from a PQ_CONV_SELECT result; no row: STORE_ENOTFOUND. */
static int pq_conversation_read(const PGresult *r, store_conversation_t **out) {
    *out = NULL;
    if (PQntuples(r) == 0)
        return STORE_ENOTFOUND;
    store_conversation_t *cv = malloc(sizeof *cv);
    if (!cv)
        return PL_ENOMEM;
    int rc = pq_conversation_from_row(r, 0, cv);
    if (rc != 0) {
        store_conversation_free(cv);
        return rc;
    }
    *out = cv;
    return 0;
}

static int pq_visitor_identify(store_conn_t *base, int64_t project_id, const char *uid,
                               int64_t now_ms, store_visitor_t **out) {
    *out = NULL;
    pq_params_t p = {0};
    par_i64(&p, project_id);
    par_text(&p, uid);
    par_i64(&p, now_ms);
    PGresult *r;
    int rc = pq_exec(pq(base), PQ_VISITOR_SEEN, &p, &r); /* no project: the foreign key */
    if (rc != 0)
        return rc;
    rc = pq_visitor_read(r, out);
    return rc == STORE_ENOTFOUND ? PL_EUNAVAIL : rc; /* cannot happen: written just now */
}

/* Points m's fields at the PQ_MESSAGE_COLUMNS of a row from column k: the strings are BORROWED
 * from the result (for the packers of store_internal.h). */
static void pq_message_borrow_row(const PGresult *r, int row, int k, const char *visitor_uid,
                                  store_message_t *m) {
    memset(m, 0, sizeof *m);
    m->id = col_i64(r, row, k + 0);
    m->conversation_id = col_i64(r, row, k + 1);
    m->project_id = col_i64(r, row, k + 2);
    m->visitor_id = col_i64(r, row, k + 3);
    m->from_customer = col_bool(r, row, k + 6);
    m->user_id = col_i64(r, row, k + 7); /* NULL reads as 0: none */
    m->created_at = col_i64(r, row, k + 12);
    m->visitor_uid = (char *)visitor_uid;
    m->content = (char *)col_str(r, row, k + 4);
    m->sender_id = (char *)col_str(r, row, k + 5);
    m->status = (char *)col_str(r, row, k + 8);
    m->content_type = (char *)col_str(r, row, k + 9);
    m->metadata_json = (char *)col_str(r, row, k + 10);
    m->temp_id = (char *)col_str(r, row, k + 11);
}

/* Builds a message list (one block) from the rows of r, message columns from column k, rows
 * skipped where column k is NULL; newest first in r, handed out oldest first. At most max rows
 * are taken. */
static int pq_msglist_build(const PGresult *r, int k, const char *uid, size_t max,
                            store_message_t **out, size_t *n) {
    store__msglist_t l;
    store__msglist_init(&l);
    int rows = PQntuples(r);
    for (int i = 0; i < rows && l.n < max; i++) {
        if (col_null(r, i, k))
            continue;
        store_message_t m;
        pq_message_borrow_row(r, i, k, uid, &m);
        int rc = store__msglist_add(&l, &m);
        if (rc != 0) {
            store__msglist_dispose(&l);
            return rc;
        }
    }
    store_message_t *v;
    size_t len;
    int rc = store__msglist_finish(&l, &v, &len);
    if (rc != 0)
        return rc;
    /* Swapping whole structs keeps their pointers into the block valid. */
    for (size_t i = 0; i < len / 2; i++) {
        store_message_t t = v[i];
        v[i] = v[len - 1 - i];
        v[len - 1 - i] = t;
    }
    *out = v;
    *n = len;
    return 0;
}

static int pq_history(store_conn_t *base, int64_t project_id, const char *uid, bool forever,
                      size_t limit, int64_t *conversation_id, store_message_t **out, size_t *n) {
    *conversation_id = 0;
    *out = NULL;
    *n = 0;
    pq_params_t p = {0};
    par_i64(&p, project_id);
    par_text(&p, uid);
    par_i64(&p, (int64_t)limit); /* <= STORE_HISTORY_MAX (store.c) */
    PGresult *r;
    int rc = pq_exec(pq(base), forever ? PQ_HISTORY_FOREVER : PQ_HISTORY_ACTIVE, &p, &r);
    if (rc != 0 || PQntuples(r) == 0)
        return rc; /* no visitor or no current conversation */
    int64_t cid = col_i64(r, 0, 0);
    rc = pq_msglist_build(r, 1, uid, limit, out, n);
    if (rc == 0)
        *conversation_id = cid;
    return rc;
}

/* Orders the positions 0..m) of one ingest statement (in[idx[j]]) by visitor (project, uid),
 * temp_id, then position. */
typedef struct {
    const store_ingest_t *in;
    const size_t *idx;
} pq_sort_arg_t;

static int cmp_visitor_key(const void *a, const void *b, void *arg) {
    const pq_sort_arg_t *s = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    const store_ingest_t *p = &s->in[s->idx[x]], *q = &s->in[s->idx[y]];
    if (p->project_id != q->project_id)
        return p->project_id < q->project_id ? -1 : 1;
    int d = strcmp(p->visitor_uid, q->visitor_uid);
    if (d == 0)
        d = strcmp(p->temp_id, q->temp_id);
    if (d != 0)
        return d;
    return x < y ? -1 : x > y;
}

static bool same_visitor(const store_ingest_t *p, const store_ingest_t *q) {
    return p->project_id == q->project_id && strcmp(p->visitor_uid, q->visitor_uid) == 0;
}

/* The visitors and keys of the statement in[idx[0..m)): fills c->grp with g[0..m) (1 + the
 * position of the visitor's first message) and tn[0..m) (1 + the position of the first
 * message of the same visitor with the same temp_id); returns g (tn = g + m). O(m log m).
 * With mok (per position of the run), also tells in *simple whether every visitor with several
 * messages here has one forever and metadata that may create in each (what PQ_MESSAGE_INGEST
 * requires of a statement). */
static size_t *pq_ingest_groups(pq_conn_t *c, const store_ingest_t *in, const size_t *idx, size_t m,
                                const bool *mok, bool *simple) {
    pq_grow((void **)&c->grp, &c->grp_cap, 3 * m, sizeof *c->grp);
    size_t *g = c->grp, *tn = g + m, *order = tn + m;
    for (size_t j = 0; j < m; j++)
        order[j] = j;
    pq_sort_arg_t arg = {in, idx};
    qsort_r(order, m, sizeof *order, cmp_visitor_key, &arg);
    if (simple)
        *simple = true;
    for (size_t b = 0, e; b < m; b = e) { /* [b, e): one visitor's messages */
        const store_ingest_t *v = &in[idx[order[b]]];
        size_t lo = order[b];
        for (e = b + 1; e < m && same_visitor(v, &in[idx[order[e]]]); e++)
            lo = order[e] < lo ? order[e] : lo;
        size_t key = order[b]; /* within a temp_id, positions ascend */
        for (size_t k = b; k < e; k++) {
            size_t j = order[k];
            const store_ingest_t *x = &in[idx[j]];
            if (k > b && strcmp(in[idx[order[k - 1]]].temp_id, x->temp_id) != 0)
                key = j;
            g[j] = lo + 1;
            tn[j] = key + 1;
            if (simple && mok && e - b > 1 && (x->forever != v->forever || !mok[idx[j]]))
                *simple = false;
        }
    }
    return g;
}

/* Queues the ingest statement for in[idx[0..m)) (see PQ_MESSAGE_INGEST: several messages of
 * one visitor only when pq_ingest_groups found the statement simple). mok[i]: in[i]'s
 * metadata may create a conversation. */
static int pq_ingest_queue(pq_conn_t *c, const store_ingest_t *in, const bool *mok,
                           const size_t *idx, size_t m) {
    enum {
        A_PROJECT,
        A_UID,
        A_NOW,
        A_TEMP,
        A_FOREVER,
        A_CONTENT,
        A_META,
        A_META_OK,
        A_GROUP,
        A_KEY,
        A_EV_N,
        A_EV_TOPIC,
        A_EV_PAYLOAD,
        A_EV_NOW,
        A__COUNT
    };
    _Static_assert(A__COUNT <= PQ_MAX_PARAMS, "PQ_MAX_PARAMS too small for the ingest");
    const size_t *g = pq_ingest_groups(c, in, idx, m, NULL, NULL), *tn = g + m;
    pq_arr_t arr[A__COUNT];
    for (int k = 0; k < A__COUNT; k++)
        arr_init(&arr[k]);
    for (size_t j = 0; j < m; j++) {
        const store_ingest_t *e = &in[idx[j]];
        bool meta_ok = mok[idx[j]];
        arr_i64(&arr[A_PROJECT], e->project_id);
        arr_str(&arr[A_UID], e->visitor_uid);
        arr_i64(&arr[A_NOW], e->now_ms);
        arr_str(&arr[A_TEMP], e->temp_id);
        arr_bool(&arr[A_FOREVER], e->forever);
        arr_str(&arr[A_CONTENT], e->content);
        arr_str(&arr[A_META], meta_ok ? e->session_metadata_json : NULL);
        arr_bool(&arr[A_META_OK], meta_ok);
        arr_i64(&arr[A_GROUP], (int64_t)g[j]);
        arr_i64(&arr[A_KEY], (int64_t)tn[j]);
        for (size_t k = 0; k < e->nevents; k++) {
            arr_i64(&arr[A_EV_N], (int64_t)j + 1);
            arr_str(&arr[A_EV_TOPIC], e->event_topics[k]);
            arr_str(&arr[A_EV_PAYLOAD], e->event_payloads[k]);
            arr_i64(&arr[A_EV_NOW], e->now_ms);
        }
    }
    pq_params_t p = {0};
    int rc = 0;
    for (int k = 0; k < A__COUNT; k++) {
        const char *lit = arr_end(&arr[k]);
        if (!lit)
            rc = PL_ENOMEM;
        par_text(&p, lit);
    }
    if (rc == 0)
        rc = pq_queue(c, SLOT_WANTED, PQ_MESSAGE_INGEST, &p);
    for (int k = 0; k < A__COUNT; k++)
        arr_dispose(&arr[k]);
    return rc;
}

/* The outcomes of the ingest statement r for in[idx[0..m)) into status[] and out[] (indexed
 * like in). Returns false when the statement did not do its work (a visitor created meanwhile
 * by another transaction: nothing was written) or its result is not what it must be; the
 * caller then discards what was filled in. */
static bool pq_ingest_parse(pq_conn_t *c, const PGresult *r, const store_ingest_t *in,
                            const size_t *idx, size_t m, int *status, store_ingest_result_t **out) {
    if ((size_t)PQntuples(r) != m || m == 0 || PQnfields(r) != 24 || !col_bool(r, 0, 22))
        return false;
    size_t nev = 0;
    for (size_t j = 0; j < m; j++)
        nev += in[idx[j]].nevents;
    pq_grow((void **)&c->obids, &c->obids_cap, nev + 1, sizeof *c->obids);
    size_t nids, used = 0;
    if (col_i64_array(r, 0, 21, c->obids, nev, &nids) != 0)
        return false;
    for (size_t j = 0; j < m; j++) {
        size_t i = idx[j];
        const store_ingest_t *e = &in[i];
        int row = (int)j;
        out[i] = NULL;
        if (col_i64(r, row, 0) != (int64_t)j + 1)
            return false;
        if (!col_bool(r, row, 1)) {
            status[i] = STORE_ENOTFOUND; /* no such project */
            continue;
        }
        store_ingest_result_t res = {0};
        int64_t key = col_i64(r, row, 23); /* the first message with this temp_id */
        if (!col_null(r, row, 8)) {        /* the idempotency key: a stored message */
            res.visitor_id = col_i64(r, row, 3);
            pq_message_borrow_row(r, row, 8, e->visitor_uid, &res.message);
            if (!res.message.content || !res.message.sender_id || !res.message.status)
                return false;
            res.duplicate = true;
            res.conversation_id = res.message.conversation_id;
        } else if (key != (int64_t)j + 1) { /* a retry of a message of this statement */
            if (key < 1 || key > (int64_t)j)
                return false;
            size_t o = idx[key - 1];
            status[i] = status[o];
            if (status[o] != 0)
                continue;
            res = *out[o];
            res.duplicate = true;
            res.conversation_created = false;
            res.conversation_reopened = false;
            res.noutbox = 0;
        } else if (!col_bool(r, row, 2)) {
            status[i] = PL_EINVAL; /* a new conversation with metadata that is not an object */
            continue;
        } else {
            if (col_null(r, row, 3) || col_null(r, row, 4) || col_null(r, row, 7) ||
                nids - used < e->nevents)
                return false; /* cannot happen: a message is written unless refused */
            res.visitor_id = col_i64(r, row, 3);
            res.conversation_id = col_i64(r, row, 4);
            res.conversation_created = col_bool(r, row, 5);
            res.conversation_reopened = col_bool(r, row, 6);
            /* its events were written in order, with increasing ids */
            for (size_t k = 0; k < e->nevents; k++)
                res.outbox_ids[k] = c->obids[used++];
            res.noutbox = e->nevents;
            res.message = (store_message_t){
                .id = col_i64(r, row, 7),
                .conversation_id = res.conversation_id,
                .project_id = e->project_id,
                .visitor_id = res.visitor_id,
                .visitor_uid = (char *)e->visitor_uid,
                .content = (char *)e->content,
                .sender_id = (char *)e->visitor_uid,
                .from_customer = true,
                .status = "sent",
                .temp_id = (char *)e->temp_id,
                .created_at = e->now_ms,
            };
        }
        out[i] = store__ingest_result_pack(&res);
        status[i] = out[i] ? 0 : PL_ENOMEM;
    }
    return used == nids;
}

/* Frees what pq_ingest_parse filled in for in[idx[0..m)). */
static void pq_ingest_discard(const size_t *idx, size_t m, int *status,
                              store_ingest_result_t **out) {
    for (size_t j = 0; j < m; j++) {
        store__ingest_result_free(out[idx[j]]);
        out[idx[j]] = NULL;
        status[idx[j]] = PL_EUNAVAIL;
    }
}

/* Tries a statement that found its visitor created meanwhile by another transaction again:
 * the next one sees it. */
#define PQ_INGEST_TRIES 3

static int pq_message_ingest(store_conn_t *base, const store_ingest_t *in,
                             store_ingest_result_t **out) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    const size_t one = 0;
    const bool mok = !in->session_metadata_json || json_text_is_object(in->session_metadata_json);
    for (int t = 0; t < PQ_INGEST_TRIES; t++) {
        int rc = pq_finish(c, pq_ingest_queue(c, in, &mok, &one, 1));
        if (rc != 0)
            return rc;
        int status = PL_EUNAVAIL;
        if (pq_ingest_parse(c, c->res[0], in, &one, 1, &status, out))
            return status;
        pq_ingest_discard(&one, 1, &status, out);
        const PGresult *r = c->res[0];
        if (PQntuples(r) != 1 || PQnfields(r) != 24 || col_bool(r, 0, 22))
            return PL_EUNAVAIL; /* not a conflict: a result that cannot happen */
    }
    return PL_EUNAVAIL;
}
/* Orders message positions (indexes into the run) by visitor (project, uid), then position. */
static int cmp_visitor_pos(const void *a, const void *b, void *arg) {
    const store_ingest_t *in = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    const store_ingest_t *p = &in[x], *q = &in[y];
    if (p->project_id != q->project_id)
        return p->project_id < q->project_id ? -1 : 1;
    int d = strcmp(p->visitor_uid, q->visitor_uid);
    if (d != 0)
        return d;
    return x < y ? -1 : x > y;
}

/* Splits the run in[0..n) into rounds: the k-th message of each visitor goes to round k, so
 * that no round holds a visitor twice and each visitor's messages keep their order. Fills
 * c->scratch with the positions grouped by round, each group in submission order (round k is
 * c->scratch[start[k] .. start[k + 1]), start = c->scratch + n); returns the number of rounds
 * (1 when the visitors are all different: the usual case). O(n log n). The caller sends a
 * round as statements of at most PQ_ROUND_MAX messages. */
static size_t pq_rounds(pq_conn_t *c, const store_ingest_t *in, size_t n, size_t **start) {
    pq_grow((void **)&c->scratch, &c->scratch_cap, 4 * n + 1, sizeof *c->scratch);
    size_t *byround = c->scratch, *st = byround + n, *order = st + n + 1, *round = order + n;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_visitor_pos, (void *)in);
    size_t rounds = 0;
    for (size_t j = 0; j < n; j++) {
        bool same = j > 0 && in[order[j - 1]].project_id == in[order[j]].project_id &&
                    strcmp(in[order[j - 1]].visitor_uid, in[order[j]].visitor_uid) == 0;
        round[order[j]] = same ? round[order[j - 1]] + 1 : 0;
        if (round[order[j]] + 1 > rounds)
            rounds = round[order[j]] + 1;
    }
    /* Counting sort by round, stable: positions in submission order within a round. */
    memset(st, 0, (rounds + 1) * sizeof *st);
    for (size_t i = 0; i < n; i++)
        st[round[i] + 1]++;
    for (size_t k = 0; k < rounds; k++)
        st[k + 1] += st[k];
    for (size_t i = 0; i < n; i++)
        byround[st[round[i]]++] = i;
    for (size_t k = rounds; k > 0; k--) /* back to the starts */
        st[k] = st[k - 1];
    st[0] = 0;
    *start = st;
    return rounds;
}

/* The run of ingests: optimistically all in one pipeline inside the savepoint "run", one
 * statement per round (pq_rounds; a refused ingest writes nothing, so it needs no savepoint of
 * its own); if any statement fails with an error, the run is rolled back to "run" and replayed
 * one request per savepoint, which gives each request its own outcome. */
/* The run of ingests: optimistically all in one pipeline inside the savepoint "run". When
 * every visitor's messages here are simple (pq_ingest_groups: one forever, metadata that may
 * create) the run goes as it came, one statement per PQ_ROUND_MAX messages; otherwise as
 * rounds (pq_rounds), one statement each, so that a statement holds a visitor once. A refused
 * ingest writes nothing, so it needs no savepoint of its own. If any statement fails with an
 * error (or found a visitor created meanwhile), the run is rolled back to "run" and replayed
 * one request per savepoint, which gives each request its own outcome. */
static int pq_message_ingest_batch(store_conn_t *base, const store_ingest_t *in, size_t n,
                                   int *status, store_ingest_result_t **out) {
    pq_conn_t *c = pq(base);
    for (size_t i = 0; i < n; i++) {
        status[i] = PL_EUNAVAIL;
        out[i] = NULL;
    }
    if (!pq_usable(c))
        return PL_EUNAVAIL;
    pq_grow((void **)&c->mok, &c->mok_cap, n, sizeof *c->mok);
    for (size_t i = 0; i < n; i++)
        c->mok[i] =
            !in[i].session_metadata_json || json_text_is_object(in[i].session_metadata_json);
    size_t *start, whole[2] = {0, n}, rounds = 1;
    bool simple;
    pq_grow((void **)&c->scratch, &c->scratch_cap, n, sizeof *c->scratch);
    for (size_t i = 0; i < n; i++)
        c->scratch[i] = i;
    pq_ingest_groups(c, in, c->scratch, n, c->mok, &simple);
    if (simple)
        start = whole;
    else
        rounds = pq_rounds(c, in, n, &start);
    /* Statements in order: round by round, each cut into pieces of PQ_ROUND_MAX. */
    int rc = pq_queue(c, SLOT_DEFERRED, PQ_SAVEPOINT_RUN, NULL);
    for (size_t k = 0; rc == 0 && k < rounds; k++)
        for (size_t a = start[k]; rc == 0 && a < start[k + 1]; a += PQ_ROUND_MAX) {
            size_t m = start[k + 1] - a < PQ_ROUND_MAX ? start[k + 1] - a : PQ_ROUND_MAX;
            rc = pq_ingest_queue(c, in, c->mok, c->scratch + a, m);
        }
    rc = pq_finish(c, rc);
    if (rc == 0) {
        bool clean = true;
        size_t stmt = 0;
        for (size_t k = 0; k < rounds && clean; k++) {
            for (size_t a = start[k]; a < start[k + 1] && clean; a += PQ_ROUND_MAX) {
                size_t m = start[k + 1] - a < PQ_ROUND_MAX ? start[k + 1] - a : PQ_ROUND_MAX;
                clean = pq_ingest_parse(c, c->res[stmt++], in, c->scratch + a, m, status, out);
            }
        }
        if (clean)
            return pq_queue(c, SLOT_DEFERRED, PQ_RELEASE_RUN, NULL);
        for (size_t i = 0; i < n; i++) {
            store__ingest_result_free(out[i]);
            out[i] = NULL;
            status[i] = PL_EUNAVAIL;
        }
    }
    if (!pq_usable(c))
        return PL_EUNAVAIL; /* the connection or the transaction is gone */
    /* One by one: each request in its own savepoint, as store.c's generic path does. */
    rc = pq_queue(c, SLOT_DEFERRED, PQ_ROLLBACK_TO_RUN, NULL);
    if (rc == 0)
        rc = pq_queue(c, SLOT_DEFERRED, PQ_RELEASE_RUN, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = pq_queue(c, SLOT_DEFERRED, PQ_SAVEPOINT, NULL);
        if (rc != 0)
            break;
        status[i] = pq_message_ingest(base, &in[i], &out[i]);
        if (!pq_usable(c))
            return PL_EUNAVAIL;
        rc = status[i] == 0 ? pq_release(base) : pq_rollback_to(base);
    }
    return rc;
}

static int pq_visitor_context(store_conn_t *base, int64_t project_id, const char *uid,
                              const char *url, int64_t now_ms, int64_t *conversation_id) {
    *conversation_id = 0;
    char at[PL_ISO8601_LEN];
    pq_params_t p = {0};
    par_i64(&p, project_id);
    par_text(&p, uid);
    par_text(&p, url);
    par_i64(&p, now_ms);
    par_text(&p, pl_iso8601(now_ms, at));
    par_i64(&p, STORE_URL_HISTORY_MAX);
    PGresult *r;
    int rc = pq_exec(pq(base), PQ_VISITOR_CONTEXT, &p, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1)
        return PL_EUNAVAIL;
    if (col_null(r, 0, 0))
        return STORE_ENOTFOUND;
    *conversation_id = col_i64(r, 0, 1); /* 0 when it has no current conversation */
    return 0;
}

static int pq_visitor_conversation(store_conn_t *base, int64_t project_id, const char *uid,
                                   bool forever, int64_t *conversation_id) {
    *conversation_id = 0;
    pq_params_t p = {0};
    par_i64(&p, project_id);
    par_text(&p, uid);
    PGresult *r;
    int rc = pq_exec(pq(base), forever ? PQ_CONV_CURRENT_FOREVER : PQ_CONV_CURRENT_ACTIVE, &p, &r);
    if (rc == 0 && PQntuples(r) > 0)
        *conversation_id = col_i64(r, 0, 0);
    return rc;
}

/* Queues the read of a conversation with its visitor (a wanted result). */
static int pq_conversation_queue(pq_conn_t *c, int64_t project_id, int64_t id) {
    pq_params_t p = {0};
    par_i64(&p, id);
    par_i64(&p, project_id);
    return pq_queue(c, SLOT_WANTED, PQ_CONV_GET, &p);
}

static int pq_conversation_get(store_conn_t *base, int64_t project_id, int64_t id,
                               store_conversation_t **out) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    int rc = pq_conversation_queue(c, project_id, id);
    rc = pq_finish(c, rc);
    return rc == 0 ? pq_conversation_read(c->res[0], out) : rc;
}

/* ---- operations: users and members ----------------------------------------------------------- */

/* A new user struct from a PQ_USER_COLUMNS result; no row: STORE_ENOTFOUND. */
static int pq_user_read(const PGresult *r, store_user_t **out) {
    *out = NULL;
    if (PQntuples(r) == 0)
        return STORE_ENOTFOUND;
    store_user_t *u = calloc(1, sizeof *u);
    if (!u)
        return PL_ENOMEM;
    u->id = col_i64(r, 0, 0);
    u->tokens_valid_from = col_i64(r, 0, 4);
    u->created_at = col_i64(r, 0, 5);
    int rc = col_text(r, 0, 1, false, &u->email);
    if (rc == 0)
        rc = col_text(r, 0, 2, false, &u->full_name);
    if (rc == 0)
        rc = col_text(r, 0, 3, false, &u->password_hash);
    if (rc != 0) {
        store_user_free(u);
        return rc;
    }
    *out = u;
    return 0;
}

static int pq_user_create(store_conn_t *base, const char *email, const char *password_hash,
                          const char *full_name, int64_t now_ms, store_user_t **out) {
    *out = NULL;
    pq_params_t p = {0};
    par_text(&p, email);
    par_text(&p, password_hash);
    par_text(&p, full_name);
    par_i64(&p, now_ms);
    PGresult *r;
    int rc = pq_exec(pq(base), PQ_USER_INSERT, &p, &r); /* a taken e-mail: STORE_ECONFLICT */
    return rc == 0 ? pq_user_read(r, out) : rc;
}

static int pq_user_get(store_conn_t *base, int64_t id, store_user_t **out) {
    *out = NULL;
    pq_params_t p = {0};
    par_i64(&p, id);
    PGresult *r;
    int rc = pq_exec(pq(base), PQ_USER_GET, &p, &r);
    return rc == 0 ? pq_user_read(r, out) : rc;
}

static int pq_user_by_email(store_conn_t *base, const char *email, store_user_t **out) {
    *out = NULL;
    pq_params_t p = {0};
    par_text(&p, email);
    PGresult *r;
    int rc = pq_exec(pq(base), PQ_USER_BY_EMAIL, &p, &r);
    return rc == 0 ? pq_user_read(r, out) : rc;
}

static int pq_user_revoke_tokens(store_conn_t *base, int64_t user_id, int64_t now_ms) {
    pq_params_t p = {0};
    par_i64(&p, user_id);
    par_i64(&p, now_ms);
    PGresult *r;
    int rc = pq_exec(pq(base), PQ_USER_REVOKE, &p, &r);
    return rc == 0 && pq_changes(r) == 0 ? STORE_ENOTFOUND : rc;
}

static int pq_member_add(store_conn_t *base, int64_t project_id, int64_t user_id,
                         const char *role) {
    pq_params_t p = {0};
    par_i64(&p, project_id);
    par_i64(&p, user_id);
    par_text(&p, role);
    par_i64(&p, pl_wall_ms());
    PGresult *r;
    /* a missing project or user fails a foreign key (STORE_ENOTFOUND), another role the CHECK
     * (PL_EINVAL) */
    return pq_exec(pq(base), PQ_MEMBER_UPSERT, &p, &r);
}

/* Queues the role of a user in a project (a wanted result: one row or none). */
static int pq_member_role_queue(pq_conn_t *c, int64_t project_id, int64_t user_id) {
    pq_params_t p = {0};
    par_i64(&p, project_id);
    par_i64(&p, user_id);
    return pq_queue(c, SLOT_WANTED, PQ_MEMBER_ROLE, &p);
}

static int pq_member_role(store_conn_t *base, int64_t project_id, int64_t user_id, char **role) {
    pq_conn_t *c = pq(base);
    *role = NULL;
    int rc = pq_member_role_queue(c, project_id, user_id);
    rc = pq_finish(c, rc);
    if (rc != 0)
        return rc;
    if (PQntuples(c->res[0]) == 0)
        return STORE_ENOTFOUND;
    return col_text(c->res[0], 0, 0, false, role);
}

/* ---- operations: refresh tokens -------------------------------------------------------------- */

/* Inserts a live token into family (0: a new family numbered after this row); *family_out
 * gets the family. */
static int pq_refresh_insert(pq_conn_t *c, int64_t user_id, int64_t family, const char *token_hash,
                             int64_t expires_at_ms, int64_t now_ms, int64_t *family_out) {
    pq_params_t p = {0};
    par_i64(&p, user_id);
    par_i64(&p, family);
    par_text(&p, token_hash);
    par_i64(&p, expires_at_ms);
    par_i64(&p, now_ms);
    PGresult *r;
    /* no such user: STORE_ENOTFOUND; a known hash: STORE_ECONFLICT; "": PL_EINVAL */
    int rc = pq_exec(c, PQ_REFRESH_INSERT, &p, &r);
    if (rc != 0)
        return rc;
    if (family == 0) {
        family = col_i64(r, 0, 0);
        pq_params_t q = {0};
        par_i64(&q, family);
        rc = pq_exec(c, PQ_REFRESH_SET_FAMILY, &q, &r);
        if (rc != 0)
            return rc;
    }
    *family_out = family;
    return 0;
}

static int pq_refresh_create(store_conn_t *base, int64_t user_id, int64_t family_id,
                             const char *token_hash, int64_t expires_at_ms, int64_t now_ms,
                             int64_t *family_out) {
    pq_conn_t *c = pq(base);
    *family_out = 0;
    PGresult *r;
    int rc;
    if (family_id != 0) {
        pq_params_t p = {0};
        par_i64(&p, family_id);
        par_i64(&p, user_id);
        rc = pq_exec(c, PQ_REFRESH_FAMILY_STATE, &p, &r);
        if (rc != 0)
            return rc;
        if (PQntuples(r) != 1)
            return PL_EUNAVAIL; /* an aggregate always has its row */
        if (col_i64(r, 0, 0) == 0 || col_i64(r, 0, 1) != 0)
            return STORE_ENOTFOUND;
    }
    /* The user's long-expired tokens go (now_ms is the caller's: no overflow below). */
    if (now_ms > INT64_MIN + STORE_REFRESH_KEEP_MS) {
        pq_params_t p = {0};
        par_i64(&p, user_id);
        par_i64(&p, now_ms - STORE_REFRESH_KEEP_MS);
        if (pq_queue(c, SLOT_DEFERRED, PQ_REFRESH_PRUNE, &p) != 0)
            return PL_EUNAVAIL; /* its failure surfaces with the insert below */
    }
    return pq_refresh_insert(c, user_id, family_id, token_hash, expires_at_ms, now_ms, family_out);
}

static int pq_refresh_rotate(store_conn_t *base, const char *old_hash, const char *new_hash,
                             int64_t new_expires_ms, int64_t now_ms, store_refresh_t *out) {
    pq_conn_t *c = pq(base);
    *out = (store_refresh_t){.status = STORE_TOKEN_UNKNOWN};
    pq_params_t p = {0};
    par_text(&p, old_hash);
    PGresult *r;
    int rc = pq_exec(c, PQ_REFRESH_FIND, &p, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        return 0; /* unknown */
    int64_t id = col_i64(r, 0, 0);
    out->user_id = col_i64(r, 0, 1);
    out->family_id = col_i64(r, 0, 2);
    int64_t expires_at = col_i64(r, 0, 3);
    bool spent = col_bool(r, 0, 4);

    if (spent) {
        /* Presented again after its rotation or logout: a copy exists somewhere. Everything
         * descended from the same login dies. */
        pq_params_t q = {0};
        par_i64(&q, out->family_id);
        par_i64(&q, now_ms);
        rc = pq_exec(c, PQ_REFRESH_REVOKE_FAMILY, &q, &r);
        if (rc == 0)
            out->status = STORE_TOKEN_REUSED;
        return rc;
    }
    if (expires_at <= now_ms) {
        out->status = STORE_TOKEN_EXPIRED;
        return 0;
    }
    pq_params_t q = {0};
    par_i64(&q, id);
    par_i64(&q, now_ms);
    if (pq_queue(c, SLOT_DEFERRED, PQ_REFRESH_USE, &q) != 0)
        return PL_EUNAVAIL; /* its failure surfaces with the insert below */
    int64_t family = 0;
    rc = pq_refresh_insert(c, out->user_id, out->family_id, new_hash, new_expires_ms, now_ms,
                           &family);
    if (rc != 0)
        return rc;
    out->status = STORE_TOKEN_OK;
    return 0;
}

static int pq_refresh_revoke(store_conn_t *base, const char *token_hash, int64_t now_ms) {
    pq_params_t p = {0};
    par_text(&p, token_hash);
    par_i64(&p, now_ms);
    PGresult *r;
    return pq_exec(pq(base), PQ_REFRESH_REVOKE_ONE, &p, &r); /* unknown: nothing changes */
}

static int pq_user_logout_all(store_conn_t *base, int64_t user_id, int64_t now_ms) {
    pq_conn_t *c = pq(base);
    pq_params_t p = {0};
    par_i64(&p, user_id);
    par_i64(&p, now_ms);
    int rc = pq_queue(c, SLOT_WANTED, PQ_USER_REVOKE, &p);
    if (rc == 0)
        rc = pq_queue(c, SLOT_WANTED, PQ_REFRESH_REVOKE_USER, &p);
    rc = pq_finish(c, rc);
    /* no such user: it has no tokens either, nothing changed */
    return rc == 0 && pq_changes(c->res[0]) == 0 ? STORE_ENOTFOUND : rc;
}

/* ---- operations: projects of agents ---------------------------------------------------------- */

static int pq_project_create_owned(store_conn_t *base, const char *name, const char *const *domains,
                                   size_t ndomains, int64_t owner_user_id, store_project_t **out) {
    *out = NULL;
    store_project_t *p = NULL;
    int rc = pq_project_create(base, name, domains, ndomains, &p);
    if (rc != 0)
        return rc;
    /* A missing user fails the foreign key: STORE_ENOTFOUND, and the savepoint undoes the
     * project. */
    rc = pq_member_add(base, p->id, owner_user_id, "manager");
    if (rc == 0) {
        p->role = strdup("manager");
        rc = p->role ? 0 : PL_ENOMEM;
    }
    if (rc != 0) {
        store_project_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static int pq_projects_of_user(store_conn_t *base, int64_t user_id, store_project_t **out,
                               size_t *n) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    *n = 0;
    if (user_id <= 0)
        return 0; /* no such user: a member of nothing */
    pq_params_t p = {0};
    par_i64(&p, user_id);
    int rc = pq_queue(c, SLOT_WANTED, PQ_PROJECTS_OF_USER, &p);
    if (rc == 0)
        rc = pq_queue(c, SLOT_WANTED, PQ_DOMAINS_OF_USER, &p);
    rc = pq_finish(c, rc);
    return rc == 0 ? pq_projects_parse(c, true, out, n) : rc;
}

static int pq_project_of_member(store_conn_t *base, int64_t project_id, int64_t user_id,
                                store_project_t **out) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    int rc = pq_project_queue(c, project_id);
    if (rc == 0)
        rc = pq_member_role_queue(c, project_id, user_id);
    rc = pq_finish(c, rc);
    if (rc != 0)
        return rc;
    store_project_t *p = NULL;
    rc = pq_project_parse(c, 0, &p);
    if (rc == 0 && PQntuples(c->res[2]) > 0) /* else not a member: role stays NULL */
        rc = col_text(c->res[2], 0, 0, false, &p->role);
    if (rc != 0) {
        store_project_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* 0 when the project exists, STORE_ENOTFOUND when not. */
static int pq_project_exists(pq_conn_t *c, int64_t project_id) {
    pq_params_t p = {0};
    par_i64(&p, project_id);
    PGresult *r;
    int rc = pq_exec(c, PQ_PROJECT_EXISTS, &p, &r);
    return rc != 0 ? rc : PQntuples(r) > 0 ? 0 : STORE_ENOTFOUND;
}

static int pq_project_update(store_conn_t *base, int64_t project_id, const char *name,
                             bool replace_domains, const char *const *domains, size_t ndomains,
                             store_project_t **out) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    /* One round trip: the update (an empty name fails the CHECK; no row: unknown project, and
     * the statements after it change nothing), the new domain list in its order, the result. */
    pq_params_t p = {0};
    par_i64(&p, project_id);
    par_text(&p, name);
    par_i64(&p, pl_wall_ms());
    int rc = pq_queue(c, SLOT_WANTED, PQ_PROJECT_UPDATE, &p);
    size_t k = 1;
    if (rc == 0 && replace_domains) {
        pq_params_t q = {0};
        par_i64(&q, project_id);
        rc = pq_queue(c, SLOT_WANTED, PQ_DOMAINS_CLEAR, &q);
        k++;
        if (rc == 0 && ndomains > 0) {
            rc = pq_domains_queue(c, PQ_DOMAINS_ADD, project_id, domains, ndomains);
            k++;
        }
    }
    if (rc == 0)
        rc = pq_project_queue(c, project_id);
    rc = pq_finish(c, rc);
    if (c->nres > 0 && pq_result_status(c, c->res[0]) == 0 && pq_changes(c->res[0]) == 0)
        return rc == 0 || rc == STORE_ENOTFOUND || rc == PL_EINVAL ? STORE_ENOTFOUND : rc;
    return rc == 0 ? pq_project_parse(c, k, out) : rc;
}

static int pq_project_widget_settings(store_conn_t *base, int64_t project_id, const char *json_text,
                                      store_project_t **out) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    if (!json_text_is_object(json_text)) {
        int rc = pq_project_exists(c, project_id);
        return rc != 0 ? rc : PL_EINVAL; /* it exists: the text is not a JSON object */
    }
    pq_params_t p = {0};
    par_i64(&p, project_id);
    par_text(&p, json_text);
    par_i64(&p, pl_wall_ms());
    int rc = pq_queue(c, SLOT_WANTED, PQ_PROJECT_SETTINGS, &p);
    if (rc == 0)
        rc = pq_project_queue(c, project_id);
    rc = pq_finish(c, rc);
    if (rc != 0)
        return rc;
    if (pq_changes(c->res[0]) == 0)
        return STORE_ENOTFOUND;
    return pq_project_parse(c, 1, out);
}

static int pq_members_list(store_conn_t *base, int64_t project_id, store_member_t **out,
                           size_t *n) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    *n = 0;
    pq_params_t p = {0};
    par_i64(&p, project_id);
    int rc = pq_queue(c, SLOT_WANTED, PQ_MEMBERS_OF, &p);
    if (rc == 0)
        rc = pq_queue(c, SLOT_WANTED, PQ_PROJECT_EXISTS, &p);
    rc = pq_finish(c, rc);
    if (rc != 0)
        return rc;
    const PGresult *r = c->res[0];
    int rows = PQntuples(r);
    if (rows == 0) /* no members: does the project exist? */
        return PQntuples(c->res[1]) > 0 ? 0 : STORE_ENOTFOUND;
    store_member_t *v = calloc((size_t)rows, sizeof *v);
    if (!v)
        return PL_ENOMEM;
    size_t len = 0;
    for (int i = 0; i < rows && rc == 0; i++) {
        store_member_t *m = &v[len++]; /* counted even when incomplete: its copies are freed */
        m->id = col_i64(r, i, 0);
        rc = col_text(r, i, 1, false, &m->email);
        if (rc == 0)
            rc = col_text(r, i, 2, false, &m->full_name);
        if (rc == 0)
            rc = col_text(r, i, 3, false, &m->role);
    }
    if (rc != 0) {
        store__member_list_free(v, len);
        return rc;
    }
    *out = v;
    *n = len;
    return 0;
}

/* ---- operations: the inbox ------------------------------------------------------------------- */

static const char *const g_status_names[4] = {"open", "pending", "solved", "spam"};

static int pq_conversations_list(store_conn_t *base, int64_t project_id, unsigned status_mask,
                                 int64_t offset, size_t limit, store_conversation_t **out,
                                 size_t *n, int64_t *total) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    *n = 0;
    *total = 0;
    status_mask &= STORE_STATUS_ALL;
    if (status_mask == 0)
        return 0;
    const char *names[4];
    size_t bits = 0;
    for (int i = 0; i < 4; i++)
        if (status_mask & (1u << i))
            names[bits++] = g_status_names[i];
    pq_arr_t arr;
    arr_init(&arr);
    for (size_t i = 0; i < bits; i++)
        arr_str(&arr, names[i]);
    const char *lit = arr_end(&arr);
    int rc = lit ? 0 : PL_ENOMEM;
    /* The total and the page in one round trip, in the same read snapshot. */
    if (rc == 0) {
        pq_params_t p = {0};
        par_i64(&p, project_id);
        par_text(&p, lit);
        rc = pq_queue(c, SLOT_WANTED, PQ_CONV_COUNT, &p);
    }
    if (rc == 0) {
        pq_params_t p = {0};
        par_i64(&p, project_id);
        par_text(&p, bits == 1 ? names[0] : lit);
        par_i64(&p, (int64_t)limit); /* <= STORE_PAGE_MAX (store.c) */
        par_i64(&p, offset);
        rc = pq_queue(c, SLOT_WANTED, bits == 1 ? PQ_CONV_PAGE_ONE : PQ_CONV_PAGE_MASK, &p);
    }
    arr_dispose(&arr);
    rc = pq_finish(c, rc);
    if (rc != 0)
        return rc;
    if (PQntuples(c->res[0]) != 1)
        return PL_EUNAVAIL;
    *total = col_i64(c->res[0], 0, 0);
    const PGresult *r = c->res[1];
    int rows = PQntuples(r);
    if (offset >= *total || rows == 0)
        return 0; /* past the end (or nothing matches) */
    size_t take = (size_t)rows < limit ? (size_t)rows : limit;
    store_conversation_t *v = calloc(take, sizeof *v);
    if (!v)
        return PL_ENOMEM;
    size_t len = 0;
    while (len < take && rc == 0) {
        rc = pq_conversation_from_row(r, (int)len, &v[len]);
        len++; /* counted even when incomplete: its copies are freed */
    }
    if (rc != 0) {
        store__conversation_list_free(v, len);
        return rc;
    }
    *out = v;
    *n = len;
    return 0;
}

/* Queues the uid of the conversation's visitor (a wanted result: no row when the conversation
 * is not in the project). */
static int pq_conv_visitor_uid_queue(pq_conn_t *c, int64_t project_id, int64_t id) {
    pq_params_t p = {0};
    par_i64(&p, id);
    par_i64(&p, project_id);
    return pq_queue(c, SLOT_WANTED, PQ_CONV_VISITOR_UID, &p);
}

static int pq_messages_list(store_conn_t *base, int64_t project_id, int64_t conversation_id,
                            int64_t before_id, size_t limit, store_message_t **out, size_t *n,
                            bool *has_more) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    *n = 0;
    *has_more = false;
    int rc = pq_conv_visitor_uid_queue(c, project_id, conversation_id);
    if (rc == 0) {
        pq_params_t p = {0};
        par_i64(&p, conversation_id);
        par_i64(&p, before_id > 0 ? before_id : INT64_MAX);
        par_i64(&p, (int64_t)limit + 1); /* one more than asked: whether older ones exist */
        rc = pq_queue(c, SLOT_WANTED, PQ_MESSAGE_PAGE, &p);
    }
    rc = pq_finish(c, rc);
    if (rc != 0)
        return rc;
    if (PQntuples(c->res[0]) == 0)
        return STORE_ENOTFOUND;
    const char *uid = col_str(c->res[0], 0, 0);
    if (!uid)
        return PL_EUNAVAIL;
    rc = pq_msglist_build(c->res[1], 0, uid, limit, out, n);
    if (rc == 0)
        *has_more = (size_t)PQntuples(c->res[1]) > limit;
    return rc;
}

static int pq_agent_reply(store_conn_t *base, int64_t project_id, int64_t conversation_id,
                          int64_t user_id, const char *text, int64_t now_ms, store_message_t **msg,
                          store_conversation_t **conv) {
    pq_conn_t *c = pq(base);
    *msg = NULL;
    *conv = NULL;
    store_conversation_t *cv = NULL;
    int rc = pq_conversation_get(base, project_id, conversation_id, &cv);
    if (rc != 0)
        return rc;
    char sender[24];
    snprintf(sender, sizeof sender, "%" PRId64, user_id);
    /* The message and the conversation's new last message, in one round trip. */
    pq_params_t p = {0};
    par_i64(&p, conversation_id);
    par_i64(&p, project_id);
    par_i64(&p, cv->visitor_id);
    par_text(&p, text);
    par_text(&p, sender);
    par_i64(&p, user_id);
    par_i64(&p, now_ms);
    rc = pq_queue(c, SLOT_WANTED, PQ_MESSAGE_INSERT_AGENT, &p);
    if (rc == 0) {
        pq_params_t q = {0};
        par_i64(&q, conversation_id);
        par_text(&q, text);
        par_i64(&q, now_ms);
        rc = pq_queue(c, SLOT_WANTED, PQ_CONV_ON_REPLY, &q);
    }
    rc = pq_finish(c, rc); /* an unknown user fails the foreign key: STORE_ENOTFOUND */
    if (rc != 0)
        goto out_free_conv;
    int64_t mid = col_i64(c->res[0], 0, 0);
    /* The conversation as it is now (the fields just written), with its visitor. */
    size_t snip = store__utf8_prefix(text, strlen(text), STORE_SNIPPET_CHARS);
    free(cv->last_message_snippet);
    cv->last_message_snippet = strndup(text, snip);
    if (!cv->last_message_snippet) {
        rc = PL_ENOMEM;
        goto out_free_conv;
    }
    cv->last_message_timestamp = now_ms;
    cv->updated_at = now_ms;

    store_message_t m = {
        .id = mid,
        .conversation_id = conversation_id,
        .project_id = project_id,
        .visitor_id = cv->visitor_id,
        .visitor_uid = cv->visitor.uid,
        .content = (char *)text,
        .sender_id = sender,
        .from_customer = false,
        .user_id = user_id,
        .status = "sent",
        .created_at = now_ms,
    };
    store__msglist_t l;
    store__msglist_init(&l);
    size_t one;
    rc = store__msglist_add(&l, &m);
    if (rc != 0) {
        store__msglist_dispose(&l);
        goto out_free_conv;
    }
    rc = store__msglist_finish(&l, msg, &one);
    if (rc != 0)
        goto out_free_conv;
    *conv = cv;
    return 0;

out_free_conv:
    store_conversation_free(cv);
    return rc;
}

/* Runs the queued write (wanted result 0) and the conversation read queued after it (wanted
 * result 1): no row changed is STORE_ENOTFOUND. */
static int pq_conversation_write_read(pq_conn_t *c, int64_t project_id, int64_t id,
                                      store_conversation_t **out) {
    int rc = pq_conversation_queue(c, project_id, id);
    rc = pq_finish(c, rc);
    if (rc != 0)
        return rc;
    if (pq_changes(c->res[0]) == 0)
        return STORE_ENOTFOUND;
    rc = pq_conversation_read(c->res[1], out);
    return rc == STORE_ENOTFOUND ? PL_EUNAVAIL : rc; /* cannot happen: written just now */
}

static int pq_conversation_update(store_conn_t *base, int64_t project_id, int64_t id,
                                  const char *status, bool mark_read, int64_t now_ms,
                                  store_conversation_t **out) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    pq_params_t p = {0};
    par_i64(&p, id);
    par_i64(&p, project_id);
    par_text(&p, status);
    par_bool(&p, mark_read);
    par_i64(&p, now_ms);
    int rc = pq_queue(c, SLOT_WANTED, PQ_CONV_UPDATE, &p); /* another status: the CHECK */
    return rc == 0 ? pq_conversation_write_read(c, project_id, id, out) : rc;
}

static int pq_conversation_assign(store_conn_t *base, int64_t project_id, int64_t id,
                                  int64_t assignee_user_id, int64_t now_ms,
                                  store_conversation_t **out) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    int rc = 0;
    if (assignee_user_id != 0) {
        /* Only a member may be assigned (a member is a user: the foreign key holds). A
         * conversation that is not in the project is "not found" first. */
        rc = pq_member_role_queue(c, project_id, assignee_user_id);
        if (rc == 0)
            rc = pq_conv_visitor_uid_queue(c, project_id, id);
        rc = pq_finish(c, rc);
        if (rc != 0)
            return rc;
        if (PQntuples(c->res[0]) == 0)
            return PQntuples(c->res[1]) == 0 ? STORE_ENOTFOUND : PL_EINVAL;
    }
    pq_params_t p = {0};
    par_i64(&p, id);
    par_i64(&p, project_id);
    if (assignee_user_id != 0)
        par_i64(&p, assignee_user_id);
    else
        par_text(&p, NULL);
    par_i64(&p, now_ms);
    rc = pq_queue(c, SLOT_WANTED, PQ_CONV_ASSIGN, &p);
    return rc == 0 ? pq_conversation_write_read(c, project_id, id, out) : rc;
}

static int pq_conversation_delete(store_conn_t *base, int64_t project_id, int64_t id,
                                  store_conversation_t **out) {
    pq_conn_t *c = pq(base);
    *out = NULL;
    /* The conversation as it was, then the delete, in one round trip. */
    int rc = pq_conversation_queue(c, project_id, id);
    if (rc == 0) {
        pq_params_t p = {0};
        par_i64(&p, id);
        par_i64(&p, project_id);
        rc = pq_queue(c, SLOT_WANTED, PQ_CONV_DELETE, &p);
    }
    rc = pq_finish(c, rc);
    if (rc != 0)
        return rc;
    rc = pq_conversation_read(c->res[0], out);
    if (rc == 0 && pq_changes(c->res[1]) != 1) {
        store_conversation_free(*out); /* cannot happen: read in this same transaction */
        *out = NULL;
        rc = PL_EUNAVAIL;
    }
    return rc;
}

static int pq_visitor_get(store_conn_t *base, int64_t project_id, int64_t visitor_id,
                          store_visitor_t **out) {
    *out = NULL;
    pq_params_t p = {0};
    par_i64(&p, visitor_id);
    par_i64(&p, project_id);
    PGresult *r;
    int rc = pq_exec(pq(base), PQ_VISITOR_GET_IN, &p, &r);
    return rc == 0 ? pq_visitor_read(r, out) : rc;
}

/* ---- operations: the transactional outbox ---------------------------------------------------- */

static int pq_outbox_fetch(store_conn_t *base, size_t limit, store_outbox_event_t **out,
                           size_t *n) {
    *out = NULL;
    *n = 0;
    pq_params_t p = {0};
    par_i64(&p, (int64_t)limit); /* <= STORE_OUTBOX_MAX (store.c) */
    PGresult *r;
    int rc = pq_exec(pq(base), PQ_OUTBOX_FETCH, &p, &r);
    if (rc != 0)
        return rc;
    store__outbox_list_t l;
    store__outbox_list_init(&l);
    for (int i = 0, rows = PQntuples(r); i < rows && rc == 0; i++) {
        store_outbox_event_t e = {
            .id = col_i64(r, i, 0),
            .topic = (char *)col_str(r, i, 1),
            .payload = (char *)col_str(r, i, 2),
            .created_at = col_i64(r, i, 3),
        };
        rc = e.topic && e.payload ? store__outbox_list_add(&l, &e) : PL_EUNAVAIL;
    }
    if (rc != 0) {
        store__outbox_list_dispose(&l);
        return rc;
    }
    return store__outbox_list_finish(&l, out, n);
}

static int pq_outbox_delete(store_conn_t *base, const int64_t *ids, size_t n, int64_t *deleted) {
    *deleted = 0;
    if (n == 0)
        return 0;
    pq_arr_t arr;
    arr_init(&arr);
    for (size_t i = 0; i < n; i++)
        arr_i64(&arr, ids[i]);
    const char *lit = arr_end(&arr);
    int rc = PL_ENOMEM;
    PGresult *r = NULL;
    if (lit) {
        pq_params_t p = {0};
        par_text(&p, lit);
        rc = pq_exec(pq(base), PQ_OUTBOX_DELETE, &p, &r);
    }
    arr_dispose(&arr);
    if (rc == 0)
        *deleted = pq_changes(r);
    return rc;
}

const store_ops_t store_pg_ops = {
    .name = "postgres",
    .dialect = STORE_DIALECT_POSTGRES,
    .conn_open = pq_conn_open,
    .conn_close = pq_conn_close,
    .errmsg = pq_errmsg,
    .begin = pq_begin,
    .commit = pq_commit,
    .rollback = pq_rollback,
    .savepoint = pq_savepoint,
    .release = pq_release,
    .rollback_to = pq_rollback_to,
    .exec_script = pq_exec_script,
    .schema_version = pq_schema_version,
    .migration_lock = pq_migration_lock,
    .schema_stamp = pq_schema_stamp,
    .ping = pq_ping,
    .project_create = pq_project_create,
    .project_get = pq_project_get,
    .project_list = pq_project_list,
    .project_domains_update = pq_project_domains_update,
    .project_count = pq_project_count,
    .visitor_identify = pq_visitor_identify,
    .history = pq_history,
    .message_ingest = pq_message_ingest,
    .message_ingest_batch = pq_message_ingest_batch,
    .visitor_context = pq_visitor_context,
    .visitor_conversation = pq_visitor_conversation,
    .conversation_get = pq_conversation_get,
    .user_create = pq_user_create,
    .user_get = pq_user_get,
    .user_by_email = pq_user_by_email,
    .user_revoke_tokens = pq_user_revoke_tokens,
    .member_add = pq_member_add,
    .member_role = pq_member_role,
    .refresh_create = pq_refresh_create,
    .refresh_rotate = pq_refresh_rotate,
    .refresh_revoke = pq_refresh_revoke,
    .user_logout_all = pq_user_logout_all,
    .project_create_owned = pq_project_create_owned,
    .projects_of_user = pq_projects_of_user,
    .project_of_member = pq_project_of_member,
    .project_update = pq_project_update,
    .project_widget_settings = pq_project_widget_settings,
    .members_list = pq_members_list,
    .conversations_list = pq_conversations_list,
    .messages_list = pq_messages_list,
    .agent_reply = pq_agent_reply,
    .conversation_update = pq_conversation_update,
    .conversation_assign = pq_conversation_assign,
    .conversation_delete = pq_conversation_delete,
    .visitor_get = pq_visitor_get,
    .outbox_fetch = pq_outbox_fetch,
    .outbox_delete = pq_outbox_delete,
};
