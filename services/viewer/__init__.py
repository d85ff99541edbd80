"""framebus viewer service."""

import os

# A JPEG header may claim 65535x65535 pixels, and OpenCV's own cap (2^30 pixels) would let one
# hostile frame allocate 3 GB. OpenCV reads this variable when cv2 is first imported, so it is
# set here, before any module of the viewer imports cv2. 8192x8192 exceeds any camera we serve.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(8192 * 8192))
