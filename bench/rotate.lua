-- wrk script: GET a different real resource on each request, rotating over the paths in
-- the file given after `--` (one `Type/id` per line), and count answers that are not 200.
local paths = {}
local i = 0
local base = "/fhir/"
local bad = 0
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   for line in io.lines(args[1]) do
      if #line > 0 then table.insert(paths, line) end
   end
   -- each thread starts at a different place in the list
   i = math.random(#paths)
end

function request()
   i = i % #paths + 1
   return wrk.format("GET", base .. paths[i], { ["Accept"] = "application/fhir+json" })
end

function response(status, headers, body)
   if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
   local total = 0
   for _, t in ipairs(threads) do total = total + (t:get("bad") or 0) end
   io.write(string.format("not-200: %d\n", total))
end
