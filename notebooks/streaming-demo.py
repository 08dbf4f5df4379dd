# %% [markdown]
# <img src="figures/dirac.png" width="700" align="left">
#
# # Streaming Alerts (with Genesis)
#
# By [@mjuric](http://github.com/mjuric), available at https://github.com/mjuric/petascale-streaming-demo
#
# ## What is Alert Streaming and When to Use It
#
#
#
# Classic survey science is not performed in real time: the analysis usually usually lags the data collection and processing. Typically, a researcher waits (days to weeks) for a reasonably sized batch of new data to be accumulated, and then performs the analysis (and frequently manually).
#
# This does not work well in cases where the object of interest may change on short timescales and needs to be followed up rapidly. An example may be a short-timescale transient, or a potentially hazardous asteroid undergoing in an Earth flyby. For this use case, the researcher would prefer to be analyzing the data as they come in, with minimal latency (on order of seconds to minutes) between data collection and discovery/characterization.
#
# This is the problem alert streaming looks to solve: to **enable near real-time transmission of alerts to (and measurements of) objects whose properties have changed**. The key differences between the offline and streaming-driven research:
# 1. Response time on order of seconds
# 1. Fully automated, machine-driven, analysis
#
# ## Streaming Challenges (Desirables)
#
# * Minimal latency (< seconds)
# * Robustness to client, server, and transport failiures (no data loss)
# * Ease of use (simple end-user interfaces)
#
# ## Technology: Apache Kafka
#
# > Apache Kafka is a community distributed event streaming platform capable of handling trillions of events a day.
# > -- https://www.confluent.io/what-is-apache-kafka/
# <br>
# <br>
#
# > What is Kafka?
# > Kafka is a **distributed messaging system** providing **fast**, **highly scalable** and **redundant** messaging through a **pub-sub model**. Kafka’s distributed design gives it several advantages. First, Kafka allows a large number of permanent or ad-hoc consumers. Second, Kafka is highly available and resilient to node failures and supports automatic recovery. In real world data systems, these characteristics make Kafka an ideal fit for communication and integration between components of large scale data systems.
# > -- https://sookocheff.com/post/kafka/kafka-in-a-nutshell/
# <br>
# <br>
#
# > ![Kafka Cluster](https://upload.wikimedia.org/wikipedia/commons/thumb/6/64/Overview_of_Apache_Kafka.svg/2560px-Overview_of_Apache_Kafka.svg.png)
#
# ## Demo setup: (Kafka Cluster + JupyterHub on Kubernetes) on Digital Ocean
#
# The demo runs on VMs on [Digital Ocean](http://digitalocean.com):
# * **Kafka broker cluster**: 8 x 6-core machine w. 16GB of RAM ("standard" [Droplet](https://www.digitalocean.com/pricing/) type)
# * **JupyterHub**: A 4-core machine w. 8GB of RAM **per user** ("standard" [Droplet](https://www.digitalocean.com/pricing/) type)
#
# Within the cluster, we've set up:
# 1. A small static topic with only 100 alerts (named `small`)
# 2. A medium-sized topic with 20,000 alerts (named `medium`)
# 3. A topic with continuously injected alerts at LSST scale (named `lsst`)
#
# ## Genesis Broker Access Library
#
# Kafka comes with [performant Python libraries](https://docs.confluent.io/current/clients/confluent-kafka-python/) that largely follow the API and structure of their native (Java) client libraries. Unfortunately, that means they're not as "Pythonic" as they could be.
#
# Included with this demo is an early version of `genesis.streaming`, a client library for robust and scalable access to alert streams. Genesis aims to make it easy for an astronomer with some knowledge of Python to consume and filter alert stream.
#
# It also largely abstracts away both the underlying transport protocol and alert serialization: to the user, alerts are simple Python `dict`s, delivered through familiar `generator`s.

# %%
# Where the Kafka cluster is: the local demo cluster (`make demo`) unless GENESIS_HOST says
# otherwise (the tests run this notebook against a cluster of their own).
import os

import genesis.streaming as gs

HOST = os.environ.get("GENESIS_HOST", "localhost")

# %% [markdown]
# ## Simple Streaming
#
# If you execute the cell below, it will hang forever... (tip: click the stop ◾️button in your Jupyter to interrupt it).

# %%
# Unattended version: the original cell waits forever (no new alerts arrive);
# here it gives up after 5 seconds without a new alert.
with gs.open(f"kafka://{HOST}/small") as stream:
    for idx, alert in stream(timeout=5):
        print("Candidate ID:", alert["candid"])

# %% [markdown]
# What happened? Genesis (actually, Kafka) remembers what was the last alert you received from any topic (the ***offset*** of the last received alert), and will only send you new alerts. This is desired behavior -- if you weren't connected immediately when the night started (or got temporarily disconnected), you may want to catch up.
#
# But what if this is your first time you connected to the stream? If so, Genesis will default to waiting for *new* packets, and not sending you anything it may already have. This is a safe default: e.g., if the first time you connect to the LSST stream is one year into operations, you don't want to be sent a year's worth of alerts! And in our case, since I'm not injecting any new alerts, it will wait indefinitely...
#
# Below is a visualization of [Kafka topics and offsets](https://kafka.apache.org/documentation/#intro_topics):
# ![Kafka Offsets](https://kafka.apache.org/23/images/log_consumer.png)
#
# Let's change this default, and have it send us everything it has. We'll also turn on a nice progress bar, and we will tell it to stop if it doesn't receive an alert in a 10 second interval.

# %%
with gs.open(f"kafka://{HOST}/small", start_at="earliest") as stream:
    for idx, alert in stream(timeout=10, progress=True):
        print("[%d] Candidate ID: %s" % (idx, alert["candid"]))

# %% [markdown]
# You may notice a slight pause before the streaming starts: this is Kafka establishing connections to the broker cluster. Once the connections are established, the alerts start streaming quickly.
#
# Rather than printing the alerts, let's just store their IDs.

# %%
with gs.open(f"kafka://{HOST}/small", start_at="earliest") as stream:
    alerts = [alert["candid"] for _, alert in stream(timeout=10, progress=True)]

alerts.sort()

print(f"Read {len(alerts)} alerts.")
print("First few candidate IDs:", alerts[:3])

# %% [markdown]
# ### Remembering "offsets"
#
# Kafka remembers the `offset` of your last transmitted alert; next time you connect, it will continue streaming from that offset.
#
# For this to work, we need to connect to a stream with a "consumer ID" -- a name uniquely identifying you. Kafka will associate the offset to the consumer ID; the next time the same consumer ID connects, it will continue streaming the offset associated to it.
#
# Let's generate a random consumer ID for your demo session, and add it to the stream URL:

# %%
import random
import string

id = "".join(random.choices(string.ascii_uppercase + string.digits, k=8))
broker_url = f"kafka://{id}@{HOST}/small"

print("Consumer ID:", id)
print("Broker URL: ", broker_url)

# %% [markdown]
# Let's read in a few alerts:

# %%
with gs.open(broker_url, start_at="earliest") as stream:
    alerts1 = [alert["candid"] for _, alert in stream(limit=25, progress=True)]

    # ... now do some work with the alert ...

    # stream.commit()

alerts1.sort()

print(f"Read {len(alerts1)} alerts.")
print("First few candidate IDs:", alerts1[:3])

# %% [markdown]
# Let's read in the rest:

# %%
with gs.open(broker_url, start_at="earliest") as stream:
    alerts2 = [alert["candid"] for _, alert in stream(timeout=10, progress=True)]

    # ... now do some work with the alert ...

    # stream.commit()

alerts2.sort()

print(f"Read {len(alerts2)} alerts.")
print("First few candidate IDs:", alerts2[:3])

# %% [markdown]
# Why didn't it continue from where we left off? Because the broker needs to be _explicitly_ told to commit the offset. It doesn't do so automatically to prevent data loss.
#
# To illustrate: if we committed the offset as soon as the alert is returned to you, and the code in _"... now do some work with the alert ..."_ section above crashes before acting on the alerts, the next time you connect to the broker these alerts would be skipped.
#
# This is why you must explicitly call `stream.commit()` once you're certain the received alerts were successfully processed.
#
# Now go back up, uncomment the `stream.commit()` lines, and re-execute these two cells.

# %% [markdown]
# *(Unattended version of "go back up, uncomment the `stream.commit()` lines, and re-execute these two cells": here are the two cells again, with `stream.commit()`.)*

# %%
with gs.open(broker_url, start_at="earliest") as stream:
    alerts1 = [alert["candid"] for _, alert in stream(limit=25, progress=True)]

    # ... now do some work with the alert ...

    stream.commit()

alerts1.sort()

print(f"Read {len(alerts1)} alerts.")
print("First few candidate IDs:", alerts1[:3])

# %%
with gs.open(broker_url, start_at="earliest") as stream:
    alerts2 = [alert["candid"] for _, alert in stream(timeout=10, progress=True)]

    # ... now do some work with the alert ...

    stream.commit()

alerts2.sort()

print(f"Read {len(alerts2)} alerts.")
print("First few candidate IDs:", alerts2[:3])

# %% [markdown]
# Finally, let's verify nothing was lost:

# %%
set(alerts) == set(alerts1 + alerts2)

# %% [markdown]
# ### About Kafka delivery guarantees
#
# A couple of warnings about Kafka's delivery guarantees:
# * **Kafka does not guarantee the order in which you'll receive the alerts**: it guarantees delivery, but some may be out of order.
# * **Kafka (typically) guarantees "at least once" delivery**: that is, you may receive some alerts more than once (if there's a crash, a network interruption, or any similar exceptional situation). Your code should guard agaist this. Exactly-once semantics difficult, but possible (and coming in the future).
#
# ![Distributed computing problems](https://cdn.confluent.io/wp-content/uploads/image2.png)
#
# -- [Mathias Verraes](https://www.linkedin.com/in/mathiasverraes/)
#
# ## Filtering the stream
#
# Now let's filter the stream for objects of interest. Say we're only interested in asteroids, and wish to ignore the rest.
#
# We'll write a filter function which checks whether the alert candidate has the "Nearby Solar System object Name" field set to something other than "null":


# %%
def filter_asteroids(alert):
    if alert["candidate"]["ssnamenr"] != "null":
        return alert
    else:
        return None


# %%
with gs.open(f"kafka://{HOST}/medium", start_at="earliest") as stream:
    for idx, alert in stream(limit=10, timeout=10, progress=True, filter=filter_asteroids):
        print(f"[{idx}] Candidate ID: {alert['candid']} {alert['candidate']['ssnamenr']}")

# %% [markdown]
# By looking at the [fields available in the alert packet](https://zwickytransientfacility.github.io/ztf-avro-alert/schema.html), you can construct arbitrarily complex filters.
#
# Here's one that checks whether an object may be a transient:

# %%
import astropy.units as u
import numpy as np
import pandas as pd


def is_transient(alert):
    # Filter by E. C. Bellm (@ebellm on GitHub)

    # if only a single discovery, bail out -- we wait for at least two
    # before triggering
    if alert["prv_candidates"] is None:
        return

    dflc = pd.DataFrame([alert["candidate"]] + alert["prv_candidates"])
    candidate = dflc.loc[0]

    # positive subtraction?
    is_positive_sub = candidate["isdiffpos"] == "t"

    # no nearby source
    if (candidate["distpsnr1"] is None) or (candidate["distpsnr1"] > 1.5):
        no_pointsource_counterpart = True
    else:
        # nearby source, but it's a galaxy?
        if candidate["sgscore1"] < 0.5:
            no_pointsource_counterpart = True
        else:
            no_pointsource_counterpart = False

    where_detected = dflc["isdiffpos"] == "t"  # nondetections will be None
    if np.sum(where_detected) >= 2:
        detection_times = dflc.loc[where_detected, "jd"].values
        dt = np.diff(detection_times)
        not_moving = np.max(dt) >= (30 * u.minute).to(u.day).value
    else:
        not_moving = False

    no_ssobject = (candidate["ssdistnr"] is None) or (candidate["ssdistnr"] < 0) or (candidate["ssdistnr"] > 5)

    if is_positive_sub and no_pointsource_counterpart and not_moving and no_ssobject:
        return alert

    return None


# %%
with gs.open(f"kafka://{HOST}/medium", start_at="earliest") as stream:
    for idx, alert in stream(limit=10, timeout=10, progress=True, filter=is_transient):
        print(f"[{idx}] Candidate ID: {alert['candid']}")

# %% [markdown]
# The filter in the above example was (intentionally) written to be slow. At this processing rate, it may not be able to keep up with the full LSST alert stream.
#
# Fortunately, Genesis knows how to parallelize execution over multiple cores, using Python's `multiprocessing.Pool`:

# %%
from multiprocessing import Pool

with Pool(4) as workers:
    with gs.open(f"kafka://{HOST}/medium", start_at="earliest") as stream:
        for idx, alert in stream(pool=workers, limit=10, timeout=10, progress=True, filter=is_transient):
            print(f"[{idx}] Candidate ID: {alert['candid']}")

# %% [markdown]
# ## Robustness
#
# Kafka is a distributed system robust to component failures.
#
# The cluster of kafka brokers in our demo setup has a "replication factor" of 2 -- that is, each alert is mirrored on at least two brokers. Therefore, one broker may fail without a data loss; the clients will transparently switch to receive data from the other replica. Let's demonstrate this!
#
# When I give a signal, please start the cell below. It will start downloading alerts from a topic with 20,000 alerts. As it's running, I will shut down one of the brokers in the cluster; your client should still download the full 20,000 alerts.

# %%
# Unattended version: the notebook shuts broker 2 down itself, from a thread, once the read is
# under way (GENESIS_CLUSTER_DIR says where the cluster is; default: the `make demo` cluster).
import threading

from genesis.cluster import LocalCluster

cluster = LocalCluster.attach(os.environ.get("GENESIS_CLUSTER_DIR") or None)
reading = threading.Event()


def shut_down_a_broker():
    if reading.wait(timeout=60):
        cluster.stop_broker(2)
        print("broker 2 stopped")


stopper = threading.Thread(target=shut_down_a_broker)
stopper.start()
received = 0
try:
    with gs.open(f"kafka://{HOST}/medium", start_at="earliest") as stream:
        for idx, alert in stream(timeout=10, progress=True):
            # we'll do nothing -- just show the progress bar.
            received += 1
            if received == 2000:  # a few seconds into the read
                reading.set()
finally:
    reading.set()
    stopper.join()
    cluster.start_broker(2)  # and back, for the rest of the notebook
print(f"received {received} alerts while a broker was down; broker 2 is back")

# %% [markdown]
# ## Scalability
#
# And now for the main event: let's see if we can stream and filter alerts at the full LSST rate!
#
# I have set up a script that injects 10,000 LSST-sized ZTF alerts every 40 seconds (average LSST rate).
#
# When I give the signal, please execute the cell below to start consuming from this stream. We will observe how many simultaneous users we can have before the system fails to keep up!

# %%
# Unattended version: the notebook starts the injector itself (LSST rate, 10,000 alerts per
# 40 s, for 20 s), and the read ends 10 s after the last alert arrived.
from genesis import inject

injector, stop_injecting, report = inject.start(f"kafka://{HOST}/lsst", "10000/40s", duration=20, pool=64)
received = 0
try:
    with gs.Pool(4) as workers:
        with gs.open(f"kafka://{HOST}/lsst") as stream:
            for idx, alert in stream(pool=workers, progress=True, timeout=10):
                # we'll do nothing -- just show the progress bar.
                received += 1
finally:
    stop_injecting.set()
    injector.join()
if injector.error is not None:
    raise injector.error
print(report[0].summary())
print(f"received {received} alerts")

# %% [markdown]
# ## SQL over the stream
#
# The "stream transformation with KSQL" step: a filter is a `SELECT` (DuckDB's SQL, nested fields
# as `candidate.magpsf`), run by DuckDB over micro-batches of the alerts as they arrive. Only the
# fields the query reads are decoded. First, the known asteroids brighter than 19th magnitude in
# `medium`:

# %%
asteroids = f"""SELECT objectId, candid, candidate.ssnamenr AS name, candidate.magpsf AS mag
                FROM 'kafka://{HOST}/medium'
                WHERE candidate.ssnamenr <> 'null' AND candidate.magpsf < 19"""
with gs.query(asteroids, start_at="earliest") as q:
    rows = [row for idx, row in q(until_eos=True)]
print(f"{len(rows)} bright asteroids in {q.stats.alerts} alerts, e.g. {rows[0]}")

# %% [markdown]
# Bright transients with a history: positive difference, brighter than 17, seen at least three
# times before; the brightest earlier detection comes from a list comprehension over
# `prv_candidates`, the time from one of genesis' functions (`jd_to_iso`).

# %%
transients = f"""SELECT objectId, candidate.magpsf AS mag, jd_to_iso(candidate.jd) AS time,
                        list_min([p.magpsf for p in prv_candidates if p.magpsf IS NOT NULL]) AS best_before
                 FROM 'kafka://{HOST}/medium'
                 WHERE candidate.isdiffpos = 't' AND candidate.magpsf < 17 AND len(prv_candidates) >= 3"""
with gs.query(transients, start_at="earliest") as q:
    for idx, row in q(until_eos=True, limit=5):
        print(row)

# %% [markdown]
# A watchlist, as Lasair's users keep them: here, the catalogue positions of the real ZTF alerts
# this demo's topics were made from (the packets in `../shared/data`), named by their objectId,
# with a radius of 2". `cone(...)` in the join is bucketed by sky cell, so a long watchlist costs
# a lookup per alert, not a comparison with every position.

# %%
from genesis.samples import real_ztf_alerts

known = {a.record["objectId"]: a.record["candidate"] for a in real_ztf_alerts()}
watchlist = pd.DataFrame(
    {"name": list(known), "ra": [c["ra"] for c in known.values()], "dec": [c["dec"] for c in known.values()]}
).assign(radius=2.0)
matches = f"""SELECT w.name, a.objectId, sky_distance(a.candidate.ra, a.candidate.dec, w.ra, w.dec) AS arcsec
              FROM 'kafka://{HOST}/medium' a
              JOIN watchlist w ON cone(a.candidate.ra, a.candidate.dec, w.ra, w.dec, w.radius)"""
with gs.query(matches, tables={"watchlist": watchlist}, start_at="earliest") as q:
    found = [row for idx, row in q(until_eos=True)]
print(f'{len(found)} alerts of medium within 2" of {len(watchlist)} watched positions')
print(pd.DataFrame(found).groupby("name").size().sort_values(ascending=False).head())

# %% [markdown]
# And a persistent query, as ksqlDB runs them: `CREATE STREAM` writes the rows into a new topic,
# exactly once (Kafka transactions, whatever crashes), for anyone to read with `gs.open`. Its group
# (`bright@`) remembers how far it got; run it again and it goes on from there.

# %%
persistent = f"""CREATE STREAM bright AS
                 SELECT * FROM 'kafka://bright@{HOST}/medium' WHERE candidate.magpsf < 16"""
with gs.persistent_query(persistent, start_at="earliest") as p:
    stats = p.run(until_eos=True)
print(f"read {stats.alerts} alerts, wrote {stats.outputs} to the topic bright in {stats.transactions} transactions")
with gs.open(f"kafka://{HOST}/bright", start_at="earliest") as stream:
    print(f"bright holds {sum(1 for _ in stream(until_eos=True))} alerts")

# %% [markdown]
# ## Alerts to a web service
#
# The "serverless" step: each alert a filter keeps is POSTed as JSON to a web service (your
# own, a Slack incoming webhook with `format="slack"`), at least once — the group commits only
# what the service acknowledged with a 2xx; failures are retried, refusals go to a dead-letter
# topic. Here the service is a few lines of Python's own `http.server` on this machine.

# %%
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


service = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=service.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{service.server_address[1]}/alerts"
with gs.pipe(f"kafka://notify@{HOST}/small", url, filter=filter_asteroids, start_at="earliest") as hook:
    stats = hook.run(until_eos=True)
service.shutdown()
print(f"{stats.delivered} asteroids of {stats.alerts} alerts delivered, {stats.retried} retries")
if received:  # run again, the group `notify` goes on after what was acknowledged: nothing new in small
    print(f"the first: {received[0]['objectId']} ({received[0]['candidate']['ssnamenr']})")

# %% [markdown]
# ## Is this how you do it?
#
# The idea at this stage was to demonstrate that sending the full stream of LSST alerts to end-users via a cloud resource is possible and cost effective.
#
# The cost of machinery for this demo:
# * Operations cost: **\$640/month** for the broker cluster
# * End-user cost: **\$40/month** (for the analysis machine)
#
# The final infrastructure costs may be ~2-3x larger, but still small.
#
# This is a starting point to build on. For example:
# * Integration with services like [AWS Lambda](https://aws.amazon.com/lambda/)
# * Stream transformation with [KSQL](https://www.confluent.io/product/ksql/)
# * Integration with [Apache Spark](http://spark.apache.org/) for scalable unified analytics.
# * ...
#
# ## Acknowledgements
#
# This work has been made possible and supported by
#
# ![Supported By](figures/foundation-logos.png)
# ![Also By](https://www.lsst.org/sites/default/files/Funding-logos-bk.png)
