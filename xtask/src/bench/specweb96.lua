-- A SPECweb96-style request mix for wrk (`wrk -s specweb96.lua URL`),
-- used by `cargo xtask bench web` (xtask/src/bench/web.rs, which writes
-- the files this script asks for into the benchmark's document root).
--
-- Four classes of files, each requested with SPECweb96's share:
--   class 0: 0.1-0.9 KB   35 %
--   class 1: 1-9 KB       50 %
--   class 2: 10-90 KB     14 %
--   class 3: 100-900 KB    1 %
-- Class c holds nine files, /specweb/class<c>_<n>.bin for n = 1..9, of
-- n * 1024 * 10^c / 10 bytes (class 0: 102 B .. 921 B; class 3: 100 KB ..
-- 900 KB). Within a class, file n is drawn with SPECweb96's weights below
-- (the fifth file most often).
--
-- Each wrk thread draws from its own generator with a fixed seed, so every
-- run asks for the same sequence of files: both servers see the same mix.

local class_share = { 0.35, 0.50, 0.14, 0.01 }
local file_share = { 0.039, 0.059, 0.088, 0.177, 0.353, 0.118, 0.074, 0.059, 0.033 }

local paths, cumulative, total = {}, {}, 0
for c = 1, #class_share do
  for n = 1, #file_share do
    total = total + class_share[c] * file_share[n]
    paths[#paths + 1] = string.format("/specweb/class%d_%d.bin", c - 1, n)
    cumulative[#cumulative + 1] = total
  end
end

local requests = {}

function init(args)
  math.randomseed(96)
  -- Formatted once: wrk.format applies the command line's -H headers
  -- (Connection: close for one connection per request).
  for i, path in ipairs(paths) do
    requests[i] = wrk.format(nil, path)
  end
end

function request()
  local r = math.random() * total
  for i = 1, #cumulative do
    if r < cumulative[i] then
      return requests[i]
    end
  end
  return requests[#requests]
end
