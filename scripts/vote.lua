-- wrk script: PUT /posts/{id}/vote as one of many users, on posts skewed toward popular ones.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  if #line > 20 then tokens[#tokens + 1] = line end
end

math.randomseed(os.time())

request = function()
  local token = tokens[math.random(#tokens)]
  local post = 1 + math.floor(1000 * math.random() ^ 2)
  local value = ({ -1, 0, 1, 1 })[math.random(4)]
  local path = string.format("/api/v1/posts/%d/vote", post)
  return wrk.format("PUT", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, string.format('{"value": %d}', value))
end
