# %% [markdown]
# # What is in an alert packet (ZTF and Rubin/LSST)
#
# A look at one real ZTF alert and one real Rubin alert from the alert data directory
# (`$GENESIS_ALERTS`, or `../shared/data` beside the checkout): their fields, their light
# curves and their cutouts. genesis hands alerts to you as plain `dict`s, exactly these.

# %%
import pandas as pd

from genesis import alerts, decode_file
from genesis.demo import alert_data_dir

data = alert_data_dir()
print("alert data:", data)

# %% [markdown]
# ## A ZTF alert
#
# Each ZTF Kafka message is one Avro container file: the writer schema, then one alert. The
# alert's own detection is in `candidate`; `prv_candidates` holds the 30 days before it
# (detections, and upper limits where `magpsf` is null); the three cutouts are gzipped FITS.

# %%
ztf = decode_file(data / "ztf" / "raw" / "fink-client" / "ZTF19acihgng.avro")[0]
print(alerts.summary(ztf))
{name: type(value).__name__ for name, value in ztf.items()}

# %% [markdown]
# The fields of `candidate` (see the [ZTF schema](https://zwickytransientfacility.github.io/ztf-avro-alert/schema.html)):

# %%
pd.Series(ztf["candidate"]).to_frame("value")

# %% [markdown]
# The main ones, and the light curve (`candidate` plus `prv_candidates`, upper limits flagged):

# %%
alerts.key_fields(ztf)

# %%
lc = alerts.lightcurve(ztf)
print(f"{len(lc)} rows: {int((~lc.is_upper_limit).sum())} detections, {int(lc.is_upper_limit.sum())} upper limits")
lc.tail(8)

# %%
fig = alerts.plot_lightcurve(ztf)
# %%
{name: image.shape for name, image in alerts.cutouts(ztf).items()}

# %%
fig = alerts.plot_cutouts(ztf)
# %% [markdown]
# ## A Rubin/LSST alert
#
# Rubin sends one alert per message in the Confluent wire format (a 5-byte header naming the
# schema in a registry, then the Avro record). The alert's detection is `diaSource`; its history
# is `prvDiaSources` (earlier detections) and `prvDiaForcedSources` (forced photometry at the
# object's position, whether or not it was detected); fluxes are in nJy (AB mag = 31.4 - 2.5
# log10 flux); cutouts are plain FITS with variance and PSF planes. This one was re-published by
# the Fink broker (which adds its own fields).

# %%
lsst_alerts = decode_file(data / "lsst" / "real_fink" / "part-2-918301.avro")
lsst = max(lsst_alerts, key=lambda a: len(a["prvDiaSources"] or []))
print(alerts.summary(lsst))
{name: type(value).__name__ for name, value in lsst.items()}

# %%
pd.Series(lsst["diaSource"]).to_frame("value")

# %%
alerts.key_fields(lsst)

# %%
lc = alerts.lightcurve(lsst)
lc.groupby(["source", "is_upper_limit"]).size()

# %%
fig = alerts.plot_lightcurve(lsst)
# %%
fig = alerts.plot_cutouts(lsst)
