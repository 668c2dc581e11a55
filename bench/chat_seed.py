#!/usr/bin/env python3
"""Seeds a migrated Parley SQLite database (project 1 must exist) with N visitors, each with one
open conversation holding one visitor message, for the inbox-listing benchmark (bench/chat.sh,
api-inbox). Inserted directly with sqlite3 before the server starts, in one transaction.
usage: chat_seed.py DB N"""
import sqlite3
import sys
import time

db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
now = int(time.time() * 1000) - n
t0 = time.time()
with con:
    for i in range(n):
        ts = now + i
        vid = con.execute("INSERT INTO visitors (project_id, uid, last_seen_at, created_at) "
                          "VALUES (1, ?, ?, ?)", (f"seed-visitor-{i:07d}", ts, ts)).lastrowid
        cid = con.execute("INSERT INTO conversations (project_id, visitor_id, status, "
                          "last_message_snippet, last_message_timestamp, unread_count, "
                          "created_at, updated_at) VALUES (1, ?, 'open', ?, ?, 1, ?, ?)",
                          (vid, f"hello {i}", ts, ts, ts)).lastrowid
        con.execute("INSERT INTO messages (conversation_id, project_id, visitor_id, content, "
                    "sender_id, from_customer, status, temp_id, created_at) "
                    "VALUES (?, 1, ?, ?, ?, 1, 'sent', ?, ?)",
                    (cid, vid, f"hello {i}", f"seed-visitor-{i:07d}", f"t{i}", ts))
con.execute("ANALYZE")
con.close()
print(f"chat_seed: {n} conversations inserted into {db} in {time.time() - t0:.1f} s")
