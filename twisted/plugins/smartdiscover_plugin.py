# Kept tiny on purpose: twistd imports every plugin module it finds.
# There is deliberately no twisted/plugins/__init__.py (see README).
from twisted.application.service import ServiceMaker

smartdiscover = ServiceMaker(
    "SmartDiscover",
    "smartdiscover.tap",
    "HTTPS autodiscover and DNS SRV responder for mail and groupware servers",
    "smartdiscover",
)
