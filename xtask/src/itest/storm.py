# The malformed-frame storm of `hostile::frame_storm`: random and
# half-valid Ethernet frames, sent through a raw packet socket on the
# namespace's TAP device as fast as this process can, for a fixed time.
#
# usage: storm.py IFACE NODE_MAC NODE_IP SECONDS SEED
# prints: "<frames sent> <distinct frames> <kinds>"
#
# Each frame is one of these kinds, chosen at random, so that every layer's
# parser gets input that passes the layers below it:
#   noise  random bytes after a random destination (node, broadcast, other)
#          and a random or common EtherType
#   ipv4   an IPv4 header with random version, IHL, lengths, flags, offset
#          and protocol, its checksum right or wrong
#   tcp    a valid IPv4 header to the node, a TCP header with random ports
#          (port 80 half the time), numbers, flags, data offset and option
#          bytes, its checksum right half the time
#   udp    the same with a UDP header whose length field is random
#   icmp   random type and code (echo requests among them) and lengths
#   arp    random hardware/protocol types and lengths, operation, addresses
#          (the node's address half the time)
# A pool of distinct frames is built first (seeded, so a failure can be
# replayed) and then sent round and round.
import os, random, socket, struct, sys, time

iface, node_mac, node_ip, seconds, seed = sys.argv[1:6]
node_mac = bytes.fromhex(node_mac.replace(":", ""))
node_ip = socket.inet_aton(node_ip)
seconds = float(seconds)
rnd = random.Random(int(seed))

sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
own_mac = sock.getsockname()[4]
subnet = node_ip[:3]


def rbytes(n):
    return rnd.getrandbits(8 * n).to_bytes(n, "big") if n > 0 else b""


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def maybe_wrong(value):
    return value if rnd.random() < 0.5 else rnd.getrandbits(16)


def eth(dst, ethertype, payload):
    frame = dst + own_mac + struct.pack("!H", ethertype) + payload
    return frame[: rnd.choice([len(frame), len(frame), rnd.randint(14, max(14, len(frame)))])][:1514]


def source_ip():
    return subnet + bytes([rnd.choice([2, 3, rnd.randint(0, 255)])]) if rnd.random() < 0.8 else rbytes(4)


def ipv4(proto, payload, src=None, valid=True):
    total = 20 + len(payload)
    if valid:
        head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, rnd.getrandbits(16), 0x4000, 64, proto, 0,
                           src or source_ip(), node_ip)
        head = head[:10] + struct.pack("!H", csum(head)) + head[12:]
        return head + payload
    ihl = rnd.randint(0, 15)
    head = struct.pack("!BBHHHBBH4s4s", (rnd.choice([4, 4, 4, rnd.randint(0, 15)]) << 4) | ihl, rnd.getrandbits(8),
                       rnd.choice([total, rnd.getrandbits(16)]), rnd.getrandbits(16), rnd.getrandbits(16),
                       rnd.getrandbits(8), rnd.choice([1, 6, 17, rnd.getrandbits(8)]), 0,
                       src or source_ip(), rnd.choice([node_ip, rbytes(4)]))
    head = head[:10] + struct.pack("!H", maybe_wrong(csum(head))) + head[12:]
    return head + rbytes(max(0, ihl * 4 - 20)) + payload


def pseudo(src, proto, segment):
    return src + node_ip + struct.pack("!BBH", 0, proto, len(segment))


def tcp():
    src = source_ip()
    offset = rnd.choice([5, 5, rnd.randint(0, 15)])
    options = rbytes(max(0, offset * 4 - 20))
    head = struct.pack("!HHIIBBHHH", rnd.getrandbits(16), rnd.choice([80, 80, rnd.getrandbits(16)]),
                       rnd.getrandbits(32), rnd.getrandbits(32), offset << 4, rnd.getrandbits(8),
                       rnd.getrandbits(16), 0, rnd.getrandbits(16))
    segment = head + options + rbytes(rnd.choice([0, 0, rnd.randint(0, 1400)]))
    check = maybe_wrong(csum(pseudo(src, 6, segment) + segment))
    segment = segment[:16] + struct.pack("!H", check) + segment[18:]
    return eth(node_mac, 0x0800, ipv4(6, segment, src))


def udp():
    src = source_ip()
    data = rbytes(rnd.randint(0, 1400))
    length = rnd.choice([8 + len(data), rnd.getrandbits(16)])
    segment = struct.pack("!HHHH", rnd.getrandbits(16), rnd.getrandbits(16), length, 0) + data
    segment = segment[:6] + struct.pack("!H", maybe_wrong(csum(pseudo(src, 17, segment) + segment))) + segment[8:]
    return eth(node_mac, 0x0800, ipv4(17, segment, src))


def icmp():
    message = struct.pack("!BBHI", rnd.choice([8, 8, 0, 3, 11, rnd.getrandbits(8)]), rnd.getrandbits(8), 0,
                          rnd.getrandbits(32)) + rbytes(rnd.randint(0, 1400))
    message = message[:2] + struct.pack("!H", maybe_wrong(csum(message))) + message[4:]
    return eth(rnd.choice([node_mac, b"\xff" * 6]), 0x0800, ipv4(1, message))


def arp():
    body = struct.pack("!HHBBH", rnd.choice([1, 1, rnd.getrandbits(16)]), rnd.choice([0x0800, 0x0800, rnd.getrandbits(16)]),
                       rnd.choice([6, 6, rnd.getrandbits(8)]), rnd.choice([4, 4, rnd.getrandbits(8)]),
                       rnd.choice([1, 2, rnd.getrandbits(16)]))
    body += rbytes(6) + source_ip() + rbytes(6) + rnd.choice([node_ip, rbytes(4)]) + rbytes(rnd.choice([0, 18, 60]))
    return eth(rnd.choice([node_mac, b"\xff" * 6]), 0x0806, body)


def noise():
    dst = rnd.choice([node_mac, b"\xff" * 6, rbytes(6)])
    ethertype = rnd.choice([0x0800, 0x0806, 0x86DD, 0x8100, rnd.getrandbits(16)])
    return eth(dst, ethertype, rbytes(rnd.randint(0, 1500)))


def ipv4_garbage():
    return eth(node_mac, 0x0800, ipv4(0, rbytes(rnd.randint(0, 1480)), valid=False))


kinds = [noise, ipv4_garbage, tcp, udp, icmp, arp]
pool = [rnd.choice(kinds)() for _ in range(30000)]
sent = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    for frame in pool:
        try:
            sock.send(frame)
        except OSError:
            pass  # a full queue or a frame the kernel refuses: the next one
        sent += 1
        if sent % 4096 == 0 and time.monotonic() >= end:
            break
print(sent, len(set(pool)), len(kinds))
